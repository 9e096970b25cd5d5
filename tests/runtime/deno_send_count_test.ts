// What the Deno transport tells the core about its sends (`countsWholeSend`): Deno adds a frame's
// UTF-8 bytes to the socket's unsent count before `send` returns, and writes them later, so the
// core charges a delivery from one reading of the count. Checked here against Deno itself, for
// small, multi-byte, vectored-size (> 1 KiB) and big frames, sent back to back.
import assert from "node:assert/strict";
import { denoTransport } from "../../src/transport/_deno.ts";
import type { WsPeer } from "../../src/transport/types.ts";
import { RUNTIMES } from "../_fixtures/runtimes.ts";

const FRAMES = ["x", "héllo", "€".repeat(700), "y".repeat(5000), "z".repeat(2_000_000)];

if (RUNTIMES.includes("deno")) {
  Deno.test("deno transport: a send is in the unsent count, whole, when it returns", async () => {
    const seen: { before: number; after: number; bytes: number }[] = [];
    let counts: boolean | undefined;
    let done!: () => void;
    const finished = new Promise<void>((r) => done = r);
    const listener = await denoTransport.serve({
      port: 0,
      hostname: "127.0.0.1",
      log: () => {},
      onError: () => new Response("error", { status: 500 }),
      fetch: (req, ctx) =>
        denoTransport.upgrade(req, ctx, {
          idleTimeoutSeconds: 0,
          maxPayloadBytes: 1 << 20,
          maxBufferedBytes: 1 << 26,
        }, {
          open(peer: WsPeer) {
            counts = peer.countsWholeSend;
            for (const frame of [...FRAMES, ...FRAMES]) {
              const before = peer.bufferedAmount;
              peer.send(frame);
              seen.push({
                before,
                after: peer.bufferedAmount,
                bytes: new TextEncoder().encode(frame).length,
              });
            }
            done();
          },
          message() {},
          close() {},
        }),
    });
    const ws = new WebSocket(`ws://127.0.0.1:${listener.port}/`);
    const closed = new Promise((r) => ws.onclose = r);
    try {
      await finished;
      assert.equal(counts, true);
      assert.equal(seen.length, FRAMES.length * 2);
      for (const s of seen) assert.equal(s.after, s.before + s.bytes, JSON.stringify(s));
      assert.ok(seen.at(-1)!.before > 2_000_000, "the frames piled up: nothing was written yet");
    } finally {
      ws.close();
      await closed;
      await listener.shutdown();
    }
  });
}
