/**
 * What this machine's kernel table of TCP sockets (Linux `/proc/net/tcp` and
 * `/proc/net/tcp6`) says about one socket. Whether a connection still has
 * an open socket, by its remote address and port: the Deno transport asks it
 * about dropped sockets, since Deno may report a socket closed while it still
 * holds it and its unsent bytes (the table is read at most once a second).
 * How many connections wait to be accepted on a listening port: the Node
 * transport on Deno watches its listener with it. Both only when allowed to
 * read the table; elsewhere the answer is "cannot tell".
 *
 * @module
 */

const TABLES = ["/proc/net/tcp", "/proc/net/tcp6"];
const REFRESH_MS = 1000;

let readable: boolean | undefined;
let open = new Set<string>();
let readAt = -Infinity;
// Whether `open` holds a table read whole (none yet while every read failed for a passing reason).
let known = false;

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

/** 16 bytes of an IPv6 address (IPv4 given as mapped), or `null`. */
function ipv6Bytes(ip: string): number[] | null {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = bare.match(/^(?:.*:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  let head = bare;
  let tail: number[] = [];
  if (v4) {
    tail = v4.slice(1, 5).map(Number);
    head = bare.includes(":") ? bare.slice(0, bare.lastIndexOf(":") + 1) + "0:0" : "::ffff:0:0";
  }
  const [l, r] = head.split("::");
  const left = l ? l.split(":") : [];
  const right = r === undefined ? [] : r ? r.split(":") : [];
  const groups = r === undefined
    ? left
    : [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  if (groups.length !== 8) return null;
  const bytes = groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 255];
  });
  if (v4) bytes.splice(12, 4, ...tail);
  return bytes.some((b) => !(b >= 0 && b <= 255)) ? null : bytes;
}

/**
 * The remote-address column(s) `/proc/net/tcp*` shows for `ip`:`port` (the
 * kernel prints each 32-bit word in host order, little-endian here).
 *
 * @example
 * ```ts
 * import { remoteKeys } from "./_tcp_table.ts";
 * const keys = remoteKeys("127.0.0.1", 8080);
 * if (!keys.includes("0100007F:1F90")) throw new Error(keys.join());
 * ```
 */
export function remoteKeys(ip: string, port: number): string[] {
  const bytes = ipv6Bytes(ip);
  if (!bytes) return [];
  const p = port.toString(16).toUpperCase().padStart(4, "0");
  const words = [0, 4, 8, 12].map((i) =>
    hex2(bytes[i + 3]) + hex2(bytes[i + 2]) + hex2(bytes[i + 1]) + hex2(bytes[i])
  ).join("");
  const keys = [`${words}:${p}`];
  const mapped = bytes.slice(0, 12).join() === "0,0,0,0,0,0,0,0,0,0,255,255";
  if (mapped) keys.push(`${words.slice(24)}:${p}`);
  return keys;
}

function canRead(): boolean {
  if (readable !== undefined) return readable;
  try {
    // Asked without a prompt: an operator who did not grant it is not interrupted.
    readable = TABLES.every((path) =>
      Deno.permissions.querySync({ name: "read", path }).state === "granted"
    );
  } catch {
    readable = false;
  }
  return readable;
}

function refresh(now: number): void {
  if (now - readAt < REFRESH_MS) return;
  readAt = now;
  const next = new Set<string>();
  let read = 0;
  for (const path of TABLES) {
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
      read++;
    } catch (err) {
      // No such table (no IPv6, not Linux) or no right to it: for good. Anything else (no
      // descriptor free during a flood) passes: keep the last table and try again next call.
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
        continue;
      }
      readAt = -Infinity;
      return;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // An inode of 0: no process holds it any more (TIME_WAIT, orphaned FIN_WAIT).
      if (f.length > 9 && f[9] !== "0") next.add(f[2]);
    }
  }
  if (read === 0) {
    readable = false;
    return;
  }
  open = next;
  known = true;
}

/**
 * Whether a socket to `keys` (from {@link remoteKeys}) is still held by a
 * process: `undefined` when the table cannot be read (while it cannot be
 * read for a passing reason, such as no descriptor free, the last table read
 * answers).
 */
export function socketHeld(keys: readonly string[]): boolean | undefined {
  if (keys.length === 0 || !canRead()) return undefined;
  refresh(performance.now());
  if (!readable || !known) return undefined;
  return keys.some((k) => open.has(k));
}

/** The lines of `path` up to the last listening socket: the kernel lists those first. */
function listeningLines(path: string): string[] {
  const file = Deno.openSync(path);
  try {
    const buf = new Uint8Array(16 * 1024);
    const decoder = new TextDecoder();
    let text = "";
    for (;;) {
      const n = file.readSync(buf);
      if (n === null || n === 0) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      // A whole line of another state: past the listeners, the rest is not needed.
      if (/\n\s*\d+: \S+ \S+ (?!0A)[0-9A-F]{2} [^\n]*\n/.test(text)) break;
    }
    return text.split("\n").slice(1);
  } finally {
    file.close();
  }
}

/**
 * How many connections wait in the kernel's accept queue of the sockets
 * listening on TCP `port` (any address, IPv4 and IPv6): `undefined` when no
 * such socket is seen or the table cannot be read (not Linux, no permission,
 * no descriptor free to open it).
 *
 * @example
 * ```ts
 * import { acceptQueue } from "./_tcp_table.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * // Not accepted yet: the connection waits in the listener's queue.
 * if (acceptQueue(listener.addr.port) !== 1) throw new Error("expected one waiting");
 * client.close();
 * listener.close();
 * ```
 */
export function acceptQueue(port: number): number | undefined {
  if (!canRead()) return undefined;
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let found = false;
  let waiting = 0;
  for (const path of TABLES) {
    let lines: string[];
    try {
      lines = listeningLines(path);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local remote st tx_queue:rx_queue ...; for a listener rx_queue is its accept queue.
      const f = line.trim().split(/\s+/);
      if (f.length < 5 || f[3] !== "0A" || !f[1].endsWith(suffix)) continue;
      found = true;
      waiting += parseInt(f[4].split(":")[1], 16) || 0;
    }
  }
  return found ? waiting : undefined;
}
