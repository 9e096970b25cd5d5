/**
 * The only module that imports the Redis client (ioredis). It opens the two
 * connections an instance needs (commands, and a subscriber: a connection in
 * pub/sub mode can do nothing else), registers the Lua scripts, and turns the
 * client's connection events into one "up/down" signal. Every command has a
 * timeout: a link that stops answering without closing (a vanished host, a
 * black-holed route) is declared down by the first command it fails to
 * answer in time, and both connections are reopened.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */
import { backoffStep } from "../_backoff.ts";
// @ts-types="./_ioredis.d.ts"
import { Redis } from "ioredis";
import { FENCED_SET, HEARTBEAT, LOAD, PUBLISH, RELEASE, SEED } from "./_scripts.ts";

/** Reconnection delays: doubling from `minMs`, capped at `maxMs`. */
export interface Backoff {
  /** First retry delay. */
  minMs: number;
  /** Longest delay between retries. */
  maxMs: number;
}

type Arg = string | number;

/** The scripts, callable with their keys then their arguments. */
export interface Scripts {
  heartbeat(...a: Arg[]): Promise<[number, string, string[], number, number]>;
  release(...a: Arg[]): Promise<number>;
  publishEvent(...a: Arg[]): Promise<number>;
  seed(...a: Arg[]): Promise<number>;
  load(...a: Arg[]): Promise<[string | null, string[]]>;
  fencedSet(...a: Arg[]): Promise<number>;
}

/** The two connections of one instance. */
export interface Connections {
  /** Commands and scripts. Fails fast while disconnected (no offline queue). */
  cmd: Redis;
  /** Pub/sub; resubscribes by itself after a reconnect. */
  sub: Redis;
  /** The scripts, on `cmd`. */
  scripts: Scripts;
  /**
   * A command timed out or the subscriber missed a ping: declare the link
   * down now and reconnect both connections (with backoff).
   */
  fail(why: string): void;
  /** Ping the subscriber connection (fails the link when it does not answer in time). */
  pingSub(): void;
}

/** Whether `err` is ioredis's command timeout. */
export function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === "Command timed out";
}

/**
 * Open both connections to `url`. They connect in the background and keep
 * reconnecting with `backoff` for ever; nothing here throws when Redis is
 * down. `onState` hears every change of "both connections ready".
 */
export function openConnections(
  url: string,
  backoff: Backoff,
  commandTimeoutMs: number,
  onState: (up: boolean, why: string) => void,
): Connections {
  const options = {
    // Commands fail at once while down: a leader must not believe a queued
    // publish went out, and callers decide what to retry.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(commandTimeoutMs, 200),
    commandTimeout: commandTimeoutMs,
    autoResubscribe: true,
    retryStrategy: (times: number) => backoffStep(times, backoff.minMs, backoff.maxMs),
    lazyConnect: false,
  };
  const cmd = new Redis(url, options);
  // The subscriber may queue: its only commands are (re)subscriptions, and
  // ioredis replays those on reconnect anyway.
  const sub = new Redis(url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null });
  let up = false;
  let failed = false;
  const update = (why: string) => {
    if (cmd.status !== "ready" || sub.status !== "ready") failed = false;
    const now = cmd.status === "ready" && sub.status === "ready" && !failed;
    if (now !== up) {
      up = now;
      onState(up, why);
    }
  };
  for (const c of [cmd, sub]) {
    c.on("ready", () => update("connected"));
    c.on("close", () => update("connection closed"));
    c.on("end", () => update("connection ended"));
    // Without a listener ioredis prints every failed attempt; the state log says enough.
    c.on("error", (err: Error) => update(err.message));
  }
  const defs: Record<keyof Scripts, [number, string]> = {
    heartbeat: [3, HEARTBEAT],
    release: [1, RELEASE],
    publishEvent: [8, PUBLISH],
    seed: [6, SEED],
    load: [3, LOAD],
    fencedSet: [2, FENCED_SET],
  };
  for (const [name, [numberOfKeys, lua]] of Object.entries(defs)) {
    // defineCommand runs EVALSHA and falls back to EVAL on NOSCRIPT, which
    // is what a restarted redis-server (empty script cache) answers.
    cmd.defineCommand(name, { numberOfKeys, lua });
  }
  // Every command, the client's own (the ready check) included: a missed
  // timeout anywhere means the link is not answering.
  for (const c of [cmd, sub]) {
    const send = c.sendCommand.bind(c);
    c.sendCommand = ((command: { promise: Promise<unknown> }, stream?: unknown) => {
      const p = (send as (c: unknown, s?: unknown) => unknown)(command, stream);
      command.promise.catch((err: unknown) => {
        if (isTimeout(err)) fail("a command timed out");
      });
      return p;
    }) as typeof c.sendCommand;
  }
  const fail = (why: string) => {
    if (failed || !up) return;
    failed = true;
    update(why);
    // Reopened: replies still owed on the old sockets are not waited for.
    cmd.disconnect(true);
    sub.disconnect(true);
  };
  let pinging = false;
  const pingSub = () => {
    if (pinging || sub.status !== "ready") return;
    pinging = true;
    sub.ping().catch((err: unknown) => {
      if (isTimeout(err)) fail("the subscriber connection stopped answering");
    }).finally(() => pinging = false);
  };
  return { cmd, sub, scripts: cmd as unknown as Scripts, fail, pingSub };
}

/** Close both connections without waiting for replies still in flight. */
export function closeConnections(c: Connections): void {
  c.cmd.disconnect();
  c.sub.disconnect();
}
