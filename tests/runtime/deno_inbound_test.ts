// Issue 9, item 3: what Deno buffers before dback sees a message. This test
// documents the runtime as measured (it does not pretend dback bounds it):
// fragmented messages grow without a limit of their own, a single frame is
// buffered whole up to Deno's 64 MiB frame limit. The server runs in a child
// process so that its RSS is its own. When a Deno upgrade changes any of this,
// a test fails and says which sentence of docs/runtimes.md to update.
import assert from "node:assert/strict";
import { rawUpgrade } from "../_fixtures/helpers.ts";
import { concat, frameHeader } from "../_fixtures/bytes.ts";
import { eventually, ServerProcess, writeAll } from "../_fixtures/_server_process.ts";

const MAIN = new URL("../../examples/main.ts", import.meta.url).pathname;
const MiB = 1024 * 1024;
/** Deno's own frame limit (fastwebsockets' default max_message_size). */
const DENO_FRAME_LIMIT = 64 * MiB;

function spawn(): Promise<ServerProcess> {
  return ServerProcess.spawn({
    args: [MAIN, "--port", "0", "--host", "127.0.0.1", "--log-level", "info"],
    portPattern: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
  });
}

/** A masked client frame header (mask of zeros: the payload goes as is). */
function header(fin: boolean, opcode: number, length: number): Uint8Array {
  const first = (fin ? 0x80 : 0) | opcode;
  if (length < 126) return new Uint8Array([first, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) {
    return new Uint8Array([first, 0x80 | 126, length >> 8, length & 255, 0, 0, 0, 0]);
  }
  const b = new Uint8Array(14);
  b[0] = first;
  b[1] = 0x80 | 127;
  new DataView(b.buffer).setBigUint64(2, BigInt(length));
  return b;
}

/** Reads server frames in the background; notes the close code and EOF. */
class FrameReader {
  closeCode: number | null = null;
  eof = false;
  frames = 0;
  readonly done: Promise<void>;

  constructor(conn: Deno.TcpConn) {
    this.done = this.#run(conn);
  }

  async #run(conn: Deno.TcpConn) {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(65536);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(chunk);
      } catch {
        n = null;
      }
      if (n === null) {
        this.eof = true;
        return;
      }
      buf = concat(buf, chunk.subarray(0, n));
      for (;;) {
        const h = frameHeader(buf);
        if (!h || buf.length < h.offset + h.length) break;
        const at = h.offset;
        this.frames++;
        if (h.opcode === 8 && h.length >= 2) this.closeCode = (buf[at] << 8) | buf[at + 1];
        buf = buf.slice(at + h.length);
      }
    }
  }
}

/** The highest RSS seen over `ms` (the runtime settles after a burst). */
async function peakRss(server: ServerProcess, ms: number): Promise<number> {
  let peak = server.rss();
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    peak = Math.max(peak, server.rss());
  }
  return peak;
}

const mib = (bytes: number) => (bytes / MiB).toFixed(1);

Deno.test("Deno buffers a fragmented message without a bound of its own (until FIN)", async () => {
  await using server = await spawn();
  const { status, conn } = await rawUpgrade(server.port);
  assert.equal(status, 101);
  const reader = new FrameReader(conn);
  try {
    await eventually(() => reader.frames >= 1, 3000); // the server-list
    const base = await peakRss(server, 300);
    // 80 MiB in 1 MiB fragments: more than Deno's 64 MiB single-frame limit,
    // to show that the limit does not apply to the sum of fragments.
    const SENT = 80 * MiB;
    const payload = new Uint8Array(MiB).fill(0x78);
    try {
      for (let sent = 0; sent < SENT; sent += MiB) {
        await writeAll(conn, header(false, sent === 0 ? 1 : 0, MiB));
        await writeAll(conn, payload);
      }
    } catch (err) {
      assert.fail(
        `Deno now bounds fragmented messages (the connection was closed while fragments ` +
          `were sent: ${err}): update docs/runtimes.md (Inbound messages on Deno)`,
      );
    }
    const peak = await peakRss(server, 1000);
    const growth = peak - base;
    console.log(
      `fragmented: sent ${mib(SENT)} MiB without FIN; server RSS ${mib(base)} → ` +
        `${mib(peak)} MiB (+${mib(growth)} MiB, ${(growth / SENT).toFixed(2)}× the bytes sent)`,
    );
    assert.ok(!reader.eof && reader.closeCode === null, "the server closed the connection");
    assert.ok(
      growth >= 0.5 * SENT,
      `Deno now bounds fragmented messages (RSS grew only ${mib(growth)} MiB for ` +
        `${mib(SENT)} MiB sent): update docs/runtimes.md (Inbound messages on Deno)`,
    );
    // Only the final fragment hands the message to dback, which then refuses it.
    await writeAll(conn, header(true, 0, 0));
    assert.ok(await eventually(() => reader.closeCode !== null, 10_000), "no close frame");
    assert.equal(reader.closeCode, 1009);
    conn.close();
    await reader.done;
    assert.ok(await eventually(() => /frame of 83886080 bytes exceeds/.test(server.output), 3000));
    const after = await peakRss(server, 500);
    console.log(`fragmented: after the close, RSS ${mib(after)} MiB`);
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
    await reader.done;
  }
});

Deno.test("Deno buffers a single frame whole below 64 MiB, dback refuses it after (1009)", async () => {
  await using server = await spawn();
  const { conn } = await rawUpgrade(server.port);
  const reader = new FrameReader(conn);
  try {
    await eventually(() => reader.frames >= 1, 3000);
    const base = await peakRss(server, 300);
    const SENT = 16 * MiB;
    const payload = new Uint8Array(MiB).fill(0x78);
    await writeAll(conn, header(true, 1, SENT));
    for (let sent = 0; sent < SENT; sent += MiB) await writeAll(conn, payload);
    assert.ok(await eventually(() => reader.closeCode !== null, 10_000), "no close frame");
    const peak = await peakRss(server, 500);
    console.log(
      `single frame: ${mib(SENT)} MiB accepted whole, then 1009; server RSS ${mib(base)} → ` +
        `${mib(peak)} MiB (+${mib(peak - base)} MiB)`,
    );
    assert.equal(reader.closeCode, 1009, "dback refuses the frame only once Deno has it all");
    assert.ok(
      await eventually(() => /frame of 16777216 bytes exceeds/.test(server.output), 3000),
    );
    assert.ok(
      peak - base >= 0.5 * SENT,
      `RSS grew only ${mib(peak - base)} MiB: Deno may no longer buffer whole frames; ` +
        `update docs/runtimes.md (Inbound messages on Deno)`,
    );
  } finally {
    conn.close();
    await reader.done;
  }
});

Deno.test("Deno refuses a frame of 64 MiB or more at its header, before buffering it", async () => {
  await using server = await spawn();
  for (
    const [length, refused] of [[DENO_FRAME_LIMIT - 1, false], [DENO_FRAME_LIMIT, true]] as const
  ) {
    const { conn } = await rawUpgrade(server.port);
    const reader = new FrameReader(conn);
    try {
      await eventually(() => reader.frames >= 1, 3000);
      await writeAll(conn, header(true, 1, length));
      try {
        await writeAll(conn, new Uint8Array(MiB).fill(0x78));
      } catch { /* refused while writing */ }
      const closed = await eventually(() => reader.eof, 2000);
      assert.equal(
        closed,
        refused,
        `Deno's frame limit is no longer ${DENO_FRAME_LIMIT} bytes (a ${length}-byte frame ` +
          `header was ${
            closed ? "refused" : "accepted"
          }): update docs/runtimes.md (Inbound messages on Deno)`,
      );
      // dback never saw the refused frame: Deno dropped the connection itself.
      if (refused) assert.equal(reader.closeCode, null);
    } finally {
      conn.close();
      await reader.done;
    }
  }
});
