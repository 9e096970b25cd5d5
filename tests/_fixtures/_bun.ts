// Kept for the tests that import the Bun harness by its old name: the harness for every runtime
// is tests/_fixtures/runtimes.ts.
import { type FixtureSpec, RuntimeServer } from "./runtimes.ts";

export { ensureBun, type FixtureSpec, ROOT } from "./runtimes.ts";

/** A WebSocketServer running under Bun in a child process. */
export type BunServer = RuntimeServer;
/** Start the fixture under Bun. */
export const BunServer = {
  start: (spec: FixtureSpec = {}): Promise<RuntimeServer> => RuntimeServer.start("bun", spec),
};
