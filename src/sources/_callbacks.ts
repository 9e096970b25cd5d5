/**
 * User callbacks over a data source: each registered hook replaces the
 * source's answer for that question. A source's own login check speaks only
 * for its own data, so it is kept only while the source still answers both
 * the server list and the user maps (a mock "admit anyone" must never guard
 * an operator's real users).
 *
 * @module
 */
import type { Callbacks } from "../callbacks.ts";
import type { DataSource } from "../source.ts";

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
    getClientId: (id) =>
      hooks.getClientId ? hooks.getClientId(id) : base.getClientId?.(id) ?? undefined,
    start: (sink) => base.start?.(sink),
    watch: (id, active) => base.watch?.(id, active),
    stop: () => base.stop?.(),
    state: () =>
      hooks.getServerData
        ? { kind: "callbacks", state: "ready" }
        : base.state?.() ?? { kind: "custom", state: "ready" },
  };
}
