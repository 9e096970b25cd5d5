// The fragmented-flood attacker that the repeated-flood benchmark and the Node transport's
// flood-read test both send: on an upgraded connection, 8 MiB of unfinished 4 KiB text fragments
// (any limit of a few KiB is passed by the first ones), while reading whatever the server sends
// until it closes.
import { concat } from "../tests/_fixtures/bytes.ts";

/** `frames` masked text/continuation frames of `size` bytes, none final (zero mask). */
export function fragments(frames: number, size: number, first: boolean): Uint8Array {
  const one = 8 + size;
  const out = new Uint8Array(one * frames).fill(0x61);
  for (let i = 0; i < frames; i++) {
    out[i * one] = first && i === 0 ? 0x01 : 0x00;
    out.set([0x80 | 126, size >> 8, size & 255, 0, 0, 0, 0], i * one + 1);
  }
  return out;
}

const FIRST = fragments(256, 4096, true);
const REST = fragments(256, 4096, false);

/**
 * Flood `conn` (already upgraded, or with the upgrade request written) with 8 MiB of fragments,
 * read until the server closes or resets, close it, and return every byte the server sent.
 */
export async function flood(conn: Deno.Conn): Promise<Uint8Array> {
  const received: Uint8Array[] = [];
  const sink = (async () => {
    try {
      for await (const bytes of conn.readable) received.push(bytes);
    } catch { /* reset */ }
  })();
  try {
    await conn.write(FIRST);
    for (let i = 0; i < 7; i++) await conn.write(REST);
  } catch { /* the server hung up mid-flood */ }
  await sink;
  try {
    conn.close();
  } catch { /* closed */ }
  return concat(...received);
}
