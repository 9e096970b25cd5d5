// A delivery asks the socket for its unsent bytes once where the transport counts a whole send at
// once (Deno): the address's charge after it is the count before plus the frame's UTF-8 bytes.
// Where it does not (a send may write at once: Node, Bun), the count is asked again after the
// send, so the charge is what the socket really holds.
import assert from "node:assert/strict";
import { Admission } from "../../src/_admission.ts";
import type { Connection } from "../../src/_connection.ts";
import { Hub } from "../../src/_hub.ts";
import { Logger } from "../../src/log.ts";
import { Metrics } from "../../src/_metrics.ts";
import { parseOptions } from "../../src/options.ts";
import type { WsPeer } from "../../src/transport/types.ts";

const FACTOR = 2;

/** A peer whose send adds the frame's bytes, then drains `drainOnSend` of them at once. */
function peer(countsWholeSend: boolean | undefined, drainOnSend = 0) {
  const p = {
    held: 1000,
    reads: 0,
    get bufferedAmount() {
      p.reads++;
      return p.held;
    },
    countsWholeSend,
    isOpen: true,
    send(frame: string) {
      p.held += new TextEncoder().encode(frame).length - drainOnSend;
    },
    close() {},
    terminate: () => false,
  };
  return p satisfies WsPeer;
}

function connection(p: WsPeer) {
  const admission = new Admission(
    parseOptions({ joinTimeoutMs: 0 }),
    new Hub<Connection>(),
    { open: () => Promise.resolve(), connect: () => Promise.resolve() },
    new Logger("silent"),
    new Metrics(),
    { factor: FACTOR },
  );
  const conn = admission.admit({ address: "10.0.0.1", key: "10.0.0.1" });
  conn.open(p);
  return { conn, admission };
}

// 5 characters, 9 UTF-8 bytes: a count by characters would be wrong.
const FRAME = '"é€x"';
const BYTES = new TextEncoder().encode(FRAME).length;

Deno.test("delivery: one reading of the unsent bytes where a send is counted whole", () => {
  const p = peer(true);
  const { conn, admission } = connection(p);
  p.reads = 0;
  assert.equal(conn.deliver(FRAME, BYTES), true);
  assert.equal(p.reads, 1, "asked once, before the send");
  assert.equal(p.held, 1000 + BYTES);
  assert.equal(conn.charge.bytes, Math.ceil((1000 + BYTES) * FACTOR));
  assert.equal(admission.unsentSeen(), 1000 + BYTES, "the open-socket sum sees the frame");
});

Deno.test("delivery: asked again after the send where the runtime may write at once", () => {
  for (const counts of [false, undefined]) {
    const p = peer(counts, 400); // most of the frame and more leave during the send
    const { conn, admission } = connection(p);
    p.reads = 0;
    assert.equal(conn.deliver(FRAME, BYTES), true);
    assert.equal(p.reads, 2, "before the send, and after it");
    assert.equal(conn.charge.bytes, Math.ceil(p.held * FACTOR), "charged what it holds");
    assert.equal(admission.unsentSeen(), p.held);
  }
});

Deno.test("delivery: a server-join is charged the same way", () => {
  const p = peer(true);
  const { conn } = connection(p);
  p.reads = 0;
  assert.equal(conn.sendJoin(FRAME, BYTES), true);
  assert.equal(p.reads, 1);
  assert.equal(conn.charge.bytes, Math.ceil((1000 + BYTES) * FACTOR));
});
