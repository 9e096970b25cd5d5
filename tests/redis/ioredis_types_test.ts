// The Redis client's declared part (src/redis/_ioredis.d.ts, which the code is checked against)
// is true of the real client: `deno check` of this file fails when a declared member is missing
// from ioredis or has an incompatible type, or when an option passed is not one it takes.
import type { Redis as Real, RedisOptions as RealOptions } from "ioredis";
import type {
  Redis as Declared,
  RedisOptions as DeclaredOptions,
} from "../../src/redis/_ioredis.d.ts";
import assert from "node:assert/strict";

type Ctor = new (url: string, options: DeclaredOptions) => Declared;

Deno.test("ioredis: the declared part of the client is a part of the real one", async () => {
  const { Redis } = await import("ioredis");
  const real: typeof Real = Redis;
  // Compile-time: each line fails `deno check` when the declaration drifts from the client.
  const _ctor: Ctor = real;
  const options: DeclaredOptions = { lazyConnect: true };
  const taken: RealOptions = options;
  const client: Declared = new real("redis://127.0.0.1:1", taken);
  // Run time: the members the declaration names exist on a real client.
  for (const m of ["get", "publish", "smembers", "xrange", "subscribe", "unsubscribe", "ping"]) {
    assert.equal(typeof (client as unknown as Record<string, unknown>)[m], "function", m);
  }
  assert.equal(client.status, "wait", "lazyConnect, as passed, reached the client");
  client.disconnect();
});
