/**
 * The part of the Redis client (ioredis) that `_redis.ts` uses, as its types (internal). The
 * client's own declarations reference Node's types (`/// <reference types="node" />`), which
 * `deno doc` cannot resolve from an npm package, so every doc run warned about them; with these
 * the docs never read the client's declarations. A type test checks that the real client
 * satisfies every member declared here and takes every option passed to it.
 *
 * @module
 */

/** The options `_redis.ts` passes. */
export interface RedisOptions {
  /** Queue commands while disconnected. */
  enableOfflineQueue?: boolean;
  /** Retries of one command across reconnects (`null`: for ever). */
  maxRetriesPerRequest?: number | null;
  /** Connect timeout, ms. */
  connectTimeout?: number;
  /** Every command's timeout, ms. */
  commandTimeout?: number;
  /** Subscribe again after a reconnect. */
  autoResubscribe?: boolean;
  /** The delay before reconnect attempt `times` (ms). */
  retryStrategy?: (times: number) => number | void | null;
  /** Wait for the first command before connecting. */
  lazyConnect?: boolean;
}

/** One connection (commands or subscriber). */
export declare class Redis {
  /** Connect to `url` (in the background). */
  constructor(url: string, options: RedisOptions);
  /** `"ready"` when connected and usable. */
  readonly status: string;
  /** GET. */
  get(key: string): Promise<string | null>;
  /** PUBLISH. */
  publish(channel: string, message: string): Promise<number>;
  /** SMEMBERS. */
  smembers(key: string): Promise<string[]>;
  /** XRANGE key start end COUNT n. */
  xrange(
    key: string,
    start: string,
    end: string,
    countToken: "COUNT",
    count: number,
  ): Promise<[id: string, fields: string[]][]>;
  /** SUBSCRIBE. */
  subscribe(...channels: string[]): Promise<unknown>;
  /** UNSUBSCRIBE. */
  unsubscribe(...channels: string[]): Promise<unknown>;
  /** PING. */
  ping(): Promise<string>;
  /** Register a Lua script as a command (EVALSHA, EVAL on NOSCRIPT). */
  defineCommand(name: string, definition: { numberOfKeys?: number; lua: string }): void;
  /** Close; with `reconnect`, connect again. */
  disconnect(reconnect?: boolean): void;
  /** Where every command goes out (wrapped to see timeouts). */
  sendCommand(command: unknown, stream?: unknown): unknown;
  /** A pub/sub message. */
  on(event: "message", listener: (channel: string, message: string) => void): this;
  /** An error. */
  on(event: "error", listener: (err: Error) => void): this;
  /** A connection event. */
  on(event: "ready" | "close" | "end", listener: () => void): this;
}
