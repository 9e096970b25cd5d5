/**
 * Loads the `./redis` entry (and with it the Redis client) only when a command line asks for
 * `--redis`. The specifier is built at run time on purpose: Deno fetches every literal import,
 * dynamic ones included, before a program starts, so a literal here would download the Redis
 * client for every run. A bundle that must contain the entry (the single executable) registers a
 * loader with a literal import instead.
 *
 * @module
 */

/** The `./redis` entry point. */
export type RedisEntry = typeof import("./redis/mod.ts");

// Installed from JSR's npm layer the modules are .js files (Node will not strip types under
// node_modules): load the entry with the extension this module itself has.
const EXT = import.meta.url.endsWith(".js") ? "js" : "ts";
let loader: () => Promise<RedisEntry> = () => import(["./redis", `mod.${EXT}`].join("/"));

/**
 * The `./redis` entry, loaded on first use.
 *
 * @example Loading it
 * ```ts
 * import { MockSource } from "./sources/mock.ts";
 * import { loadRedisEntry } from "./_redis_entry.ts";
 * const { redisCluster } = await loadRedisEntry();
 * const cluster = redisCluster({ url: "redis://127.0.0.1:1", source: new MockSource() });
 * if (cluster.status().role !== "follower") throw new Error("not started, so not the publisher");
 * await cluster.close();
 * ```
 */
export function loadRedisEntry(): Promise<RedisEntry> {
  return loader();
}

/** Replace how the entry is loaded (a bundler entry passes `() => import(".../redis/mod.ts")`). */
export function setRedisEntryLoader(load: () => Promise<RedisEntry>): void {
  loader = load;
}
