// One guild's user map, for the tests of joins and presence: its users, random presence events
// over them, a directory that serves them, and a server with that guild as its only one.
import type { PresenceEvent, ServerOptions, UserMap } from "../../mod.ts";
import { CallbackRunner } from "../../src/_callback_runner.ts";
import { Directory } from "../../src/_directory.ts";
import { Metrics } from "../../src/_metrics.ts";
import { Logger } from "../../src/log.ts";
import { startServer, type TestServer } from "./helpers.ts";

/** The guild's Discord id; its d-zone name is "main". */
export const SERVER = "100";
/** Every presence status. */
export const STATUSES = ["online", "idle", "dnd", "offline"] as const;

/** `n` users `0` … `n - 1`, named `user i`, with the status `statusOf(i)` (default online). */
export function users(
  n: number,
  statusOf: (i: number) => (typeof STATUSES)[number] = () => "online",
): UserMap {
  const map: UserMap = {};
  for (let i = 0; i < n; i++) {
    map[`${i}`] = { uid: `${i}`, username: `user ${i}`, status: statusOf(i), roleColor: "#123456" };
  }
  return map;
}

/** `n` users; every fourth one (uid 3, 7, ...) offline: what the `hideOfflineAbove` tests hide. */
export const quarterOffline = (n: number): UserMap => users(n, (i) => STATUSES[i % 4]);

/** The members a viewer of a guild that hides offline members should have: the others. */
export const visible = <V extends Record<string, { status?: string }>>(v: V): V =>
  Object.fromEntries(Object.entries(v).filter(([, u]) => u.status !== "offline")) as V;

/** A random presence event of step `step`: some for uids beyond the map, some renames, removals. */
export function randomPresence(rand: (n: number) => number, step: number): PresenceEvent {
  const uid = `${rand(260)}`; // some beyond the map: new users, or unknown ones without a name
  const e: PresenceEvent = { server: SERVER, uid, status: STATUSES[rand(4)] };
  const kind = rand(10);
  if (kind === 0) return { ...e, delete: true };
  if (kind <= 2) return { ...e, username: `renamed ${step}` };
  if (kind === 3) return { ...e, roleColor: "#00ff00" };
  return e;
}

/** A silent directory over `getUserData`, snapshots reused for 1 s. */
export function directory(
  getUserData: () => UserMap | Promise<UserMap>,
  cacheMs: number,
  hideOfflineAbove?: number,
): Directory {
  const log = new Logger("silent");
  const runner = new CallbackRunner(5000, log, new Metrics());
  return new Directory({ getServerData: () => ({}), getUserData }, runner, cacheMs, log, {
    windowMs: 1000,
    hideOfflineAbove,
  });
}

/** A test server whose only guild is {@link SERVER} ("main"), its users from `getUserData`. */
export function guildServer(
  options: ServerOptions,
  getUserData: () => UserMap | Promise<UserMap>,
): Promise<TestServer> {
  return startServer({
    ...options,
    callbacks: {
      getServerData: () => ({ [SERVER]: { id: "main", name: "Main", default: true } }),
      getUserData,
    },
  });
}
