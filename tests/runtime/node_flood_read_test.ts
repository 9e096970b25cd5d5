// The Node transport on Deno's node:http, in process: once ws has refused a fragmented-oversized
// message with 1009, the attacker's socket is read no further, whatever it still sends. (ws
// resumes the socket to discard the rest; read, a flood is garbage that raised Deno's RSS by tens
// of MiB under repeated attackers.)
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { rawUpgrade, until } from "../_fixtures/helpers.ts";
import { flood } from "../../bench/_flood_attacker.ts";
import { type NodeContext, nodeTransport } from "../../src/transport/_node.ts";

const KiB = 1024;

Deno.test("node transport: after a 1009 a flooding attacker's socket is read no further", async () => {
  const transport = nodeTransport();
  const sockets: Socket[] = [];
  const codes: number[] = [];
  const listener = await transport.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req, ctx) => {
      sockets.push((ctx as NodeContext).upgrade!.socket as Socket);
      return transport.upgrade(req, ctx, {
        idleTimeoutSeconds: 0,
        maxPayloadBytes: 1024,
        maxBufferedBytes: 1 << 20,
      }, { open() {}, message() {}, close: (code) => void codes.push(code) });
    },
    onError: () => new Response(null, { status: 500 }),
    log: () => {},
  });
  const ATTACKERS = 10;
  try {
    for (let n = 0; n < ATTACKERS; n++) {
      const { status, conn } = await rawUpgrade(listener.port);
      assert.equal(status, 101);
      // 8 MiB in 4 KiB fragments; the first KiB is already over the limit.
      const received = await flood(conn);
      // The server's close frame: opcode 8, code 1009.
      assert.equal(received[0], 0x88);
      assert.equal((received[2] << 8) | received[3], 1009);
    }
    await until(() => sockets.every((s) => s.destroyed), 15_000, "every attacker's socket to go");
  } finally {
    await listener.shutdown();
  }
  const read = sockets.map((s) => Math.ceil(s.bytesRead / KiB));
  console.log(`KiB read per attacker (of 8,192 sent): ${read.join(", ")}`);
  assert.equal(codes.length, ATTACKERS);
  // One read reaches the first fragments (a read takes up to 64 KiB here), and at most one more
  // may be under way when ws refuses; before, the socket was read until it was paused a timer
  // later: 130-340 KiB each.
  for (const kib of read) assert.ok(kib <= 129, `read ${kib} KiB of a refused flood`);
});
