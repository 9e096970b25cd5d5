/**
 * User callbacks over a data source: each registered hook replaces the
 * source's answer for that question. A source's own login check speaks only
 * for its own data, so it is kept only while the source still answers both
 * the server list and the user maps (a mock "admit anyone" must never guard
 * an operator's real users). Without a source, the base is the mock world
 * until a data hook (`getServerData` or `getUserData`) is registered, and an
 * inert source from then on: the mock then answers nothing and emits nothing.
 *
 * @module
 */
import type { Callbacks } from "../callbacks.ts";
import type { DataSource } from "../source.ts";
import { inertSource } from "./_inert.ts";

/**
 * The source the server consumes: `hooks` is read at every call, so hooks
 * registered after construction take effect.
 */
export function withCallbacks(base: DataSource, hooks: Readonly<Callbacks>): DataSource {
  const ownData = () => !hooks.getServerData && !hooks.getUserData;
  return {
    getServerData: () => hooks.getServerData ? hooks.getServerData() : base.getServerData(),
    getUserData: (id) => hooks.getUserData ? hooks.getUserData(id) : base.getUserData(id),
    // A getter, so "no validator" stays visible as `undefined` (the handler then refuses).
    get validateDiscordUser() {
      if (hooks.validateDiscordUser) return hooks.validateDiscordUser;
      if (base.validateDiscordUser && ownData()) return base.validateDiscordUser.bind(base);
      return undefined;
    },
    // A getter too: with no hook and no base method there is nothing to ask, and a join then
    // costs no call (an absent id is not cached, so a method answering "none" ran on every join).
    get getClientId() {
      const hook = hooks.getClientId;
      if (hook) return (id: string) => hook(id);
      return base.getClientId?.bind(base);
    },
    start: (sink, context) => base.start?.(sink, context),
    watch: (id, active) => base.watch?.(id, active),
    stop: () => base.stop?.(),
    state: () =>
      hooks.getServerData
        ? { kind: "callbacks", state: "ready" }
        : base.state?.() ?? { kind: "custom", state: "ready" },
  };
}

/**
 * The base when no source is given: `mock` while no data hook is registered,
 * an inert source once one is. The mock's events are dropped and its rooms
 * never watched from then on, so it produces no activity at all.
 *
 * @example
 * ```ts
 * import { MockSource } from "../sources/mock.ts";
 * import { defaultBase } from "./_callbacks.ts";
 * import type { Callbacks } from "../callbacks.ts";
 * const hooks: Callbacks = {};
 * const mock = new MockSource();
 * const base = defaultBase(mock, hooks);
 * if (Object.keys(await base.getServerData()).length !== 4) throw new Error("the mock world first");
 * hooks.getUserData = () => ({});
 * if (Object.keys(await base.getServerData()).length !== 0) throw new Error("then nothing");
 * base.watch?.("232769614004748288", true);
 * if (mock.watched.length !== 0) throw new Error("the mock must not run");
 * ```
 */
export function defaultBase(mock: DataSource, hooks: Readonly<Callbacks>): DataSource {
  const inert = inertSource();
  const mockData = () => !hooks.getServerData && !hooks.getUserData;
  const pick = () => mockData() ? mock : inert;
  return {
    getServerData: () => pick().getServerData(),
    getUserData: (id) => pick().getUserData(id),
    get validateDiscordUser() {
      const b = pick();
      return b.validateDiscordUser?.bind(b);
    },
    get getClientId() {
      const b = pick();
      return b.getClientId?.bind(b);
    },
    start: (sink, context) => mock.start?.({ emit: (e) => mockData() && sink.emit(e) }, context),
    // Leaving is always passed on, so a room watched before a hook came is stopped.
    watch: (id, active) => {
      if (!active || mockData()) mock.watch?.(id, active);
    },
    stop: () => mock.stop?.(),
    state: () => pick().state?.() ?? { kind: "callbacks", state: "ready" },
  };
}
