// The per-address memory charge on a fake clock: a dropped connection stays charged (slot and
// bytes) until its socket is proven gone and its quarantine has passed, whichever is later; and
// the kernel TCP-table lookup that is Deno's proof.
import assert from "node:assert/strict";
import { ChargeLedger, type GoneProbe } from "../../src/_charge.ts";
import { remoteKeys, socketHeld } from "../../src/transport/_tcp_table.ts";

const IP = "203.0.113.7";

function ledger(slots = 2, bytes = 1000) {
  const clock = { now: 0 };
  const l = new ChargeLedger({ slots, bytes, quarantineMs: 60_000, factor: 2 }, () => clock.now);
  return { l, clock };
}

Deno.test("charge: a live connection is charged its unsent bytes × the factor, and freed at once on close", () => {
  const { l } = ledger();
  const c = l.open(IP);
  c.set(100);
  assert.deepEqual(l.charged(IP), { slots: 1, bytes: 200 });
  c.set(30);
  assert.deepEqual(l.charged(IP), { slots: 1, bytes: 60 });
  c.release();
  assert.deepEqual(l.charged(IP), { slots: 0, bytes: 0 });
  assert.equal(l.lingering, 0);
});

Deno.test("charge: proven gone at once, a dropped connection is still charged until the quarantine ends", () => {
  const { l, clock } = ledger(1);
  const c = l.open(IP);
  c.drop(50, () => true);
  c.release();
  assert.equal(l.admits(IP), false);
  assert.deepEqual(l.charged(IP), { slots: 1, bytes: 100 });
  assert.equal(l.lingering, 1);
  clock.now = 59_999;
  assert.deepEqual(l.sweep(), []);
  assert.equal(l.admits(IP), false);
  clock.now = 60_000;
  assert.deepEqual(l.sweep(), [IP]);
  assert.equal(l.admits(IP), true);
  assert.equal(l.lingering, 0);
});

Deno.test("charge: past the quarantine, a socket the runtime still holds stays charged until it is gone", () => {
  const { l, clock } = ledger(1);
  let held = true;
  const probe: GoneProbe = () => !held;
  const c = l.open(IP);
  c.drop(10, probe);
  c.release(); // Deno's close event (code 0) while the TCP socket stays
  clock.now = 600_000;
  assert.deepEqual(l.sweep(), []);
  assert.equal(l.admits(IP), false, "a held socket keeps its slot");
  held = false;
  assert.deepEqual(l.sweep(), [IP]);
  assert.equal(l.admits(IP), true);
});

Deno.test("charge: where the runtime cannot tell, the close event is the proof", () => {
  const { l, clock } = ledger(1);
  const c = l.open(IP);
  c.drop(10, () => undefined);
  clock.now = 120_000;
  assert.deepEqual(l.sweep(), [], "not closed yet");
  c.release();
  assert.equal(l.admits(IP), true, "closed after the quarantine: freed at once");
});

Deno.test("charge: a dropped charge is frozen; the address's bytes refuse both a new connection and a bigger send", () => {
  const { l } = ledger(4, 1000);
  const a = l.open(IP);
  a.set(300); // 600
  a.drop(300, () => false);
  a.set(0); // frozen: the runtime still holds it
  assert.deepEqual(l.charged(IP), { slots: 1, bytes: 600 });
  const b = l.open(IP);
  assert.equal(b.affords(200), true); // 600 + 400
  assert.equal(b.affords(201), false); // 600 + 402
  b.set(200);
  assert.equal(l.admits(IP), false, "bytes spent, though slots remain");
  assert.equal(l.admits("198.51.100.1"), true, "other addresses are not charged");
});

Deno.test("charge: where the runtime keeps its largest frame (Deno), that buffer stays charged after the bytes left", () => {
  const clock = { now: 0 };
  const l = new ChargeLedger(
    { slots: 4, bytes: 1000, quarantineMs: 60_000, factor: 1, keepsLargestFrame: true },
    () => clock.now,
  );
  const a = l.open(IP);
  a.sent(300);
  a.set(300);
  assert.deepEqual(l.charged(IP), { slots: 1, bytes: 600 });
  a.sent(10);
  a.set(0); // all written: the write buffer remains
  assert.deepEqual(l.charged(IP), { slots: 1, bytes: 300 });
  const b = l.open(IP);
  assert.equal(b.affords(700), true);
  assert.equal(b.affords(701), false);
});

Deno.test("TCP table: a socket this process holds is found by its peer's address, and not once closed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  const peer = server.remoteAddr as Deno.NetAddr;
  const keys = remoteKeys(peer.hostname, peer.port);
  try {
    // The table is re-read at most once a second per process: an earlier reader's copy may
    // predate this socket, so wait (bounded) for a fresh one rather than race it.
    const until = Date.now() + 10_000;
    while (socketHeld(keys) !== true && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(socketHeld(keys), true);
  } finally {
    server.close();
    client.close();
    listener.close();
  }
  const deadline = Date.now() + 10_000;
  while (socketHeld(keys) !== false && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(socketHeld(keys), false);
});

Deno.test("charge: the ledger sums the open sockets' unsent bytes as last seen, dropped ones until they close", () => {
  const { l } = ledger(4, 1e9);
  const a = l.open(IP);
  const b = l.open("203.0.113.8");
  a.set(100);
  b.set(40);
  assert.equal(l.unsent, 140);
  a.set(10); // drained
  assert.equal(l.unsent, 50);
  b.drop(70, () => true); // dropped with 70 unsent: counted as that until its socket closes
  b.set(0); // a dropped charge is frozen
  assert.equal(l.unsent, 80);
  b.release();
  assert.equal(l.unsent, 10);
  b.release(); // twice is once
  a.release();
  assert.equal(l.unsent, 0);
  const c = l.open(IP);
  c.set(25);
  c.forget(); // the server stopped
  assert.equal(l.unsent, 0);
});
