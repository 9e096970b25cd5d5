/**
 * The inert data source (internal): no servers, no users, no login checks,
 * no events. User callbacks that supply the data run over it instead of the
 * mock world, so no demo user or demo chat can reach an operator's room.
 *
 * @module
 */
import type { DataSource } from "../source.ts";

/**
 * A source that knows nothing and never emits.
 *
 * @example
 * ```ts
 * import { inertSource } from "./_inert.ts";
 * const inert = inertSource();
 * if (Object.keys(inert.getServerData()).length !== 0) throw new Error("no servers");
 * if (Object.keys(await inert.getUserData("232769614004748288")).length !== 0) throw new Error();
 * if (inert.validateDiscordUser || inert.start || inert.watch) throw new Error("nothing to run");
 * ```
 */
export function inertSource(): DataSource & { getServerData(): Record<string, never> } {
  return {
    getServerData: () => ({}),
    getUserData: () => ({}),
  };
}
