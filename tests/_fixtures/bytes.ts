// Byte helpers for the raw-socket WebSocket clients of tests and benchmarks.

/** One array holding `parts` in order. */
export function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The header of a server's (unmasked) WebSocket frame: opcode, payload length, payload offset. */
export interface FrameHeader {
  opcode: number;
  length: number;
  offset: number;
}

/** The frame header at the start of `buf`, or `undefined` while its bytes are not all there. */
export function frameHeader(buf: Uint8Array): FrameHeader | undefined {
  if (buf.length < 2) return undefined;
  let length = buf[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = (buf[2] << 8) | buf[3];
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(new DataView(buf.buffer, buf.byteOffset + 2, 8).getBigUint64(0));
    offset = 10;
  }
  return { opcode: buf[0] & 0x0f, length, offset };
}
