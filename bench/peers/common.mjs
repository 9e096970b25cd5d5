// Shared by every server under test (dback, raw Deno, Bun, Node ws): the
// benchmark world (one Discord server, a user map of configurable size), the
// frames of the minimal protocol, and the control endpoint
// `GET /publish/<count>/<rate>[/<pad>]`. Plain JavaScript so that Deno, Bun and
// Node load the very same file.

/** Discord id of the one server every client joins. */
export const DID = "100000000000000001";
/** Its short id (what clients ask for in `connect`). */
export const SHORT_ID = "bench";
/** Its display name. */
export const SERVER_NAME = "Bench";
/** Channel id carried by every `message` broadcast. */
export const CHANNEL = "527964146659229701";
/** Speaker of every `message` broadcast. */
export const SPEAKER = "100000000000000000";

/**
 * `--users <n>` from a command line (default 100).
 * @param {string[]} argv
 * @returns {{ users: number }}
 */
export function parseArgs(argv) {
  let users = 100;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--users") users = Number(argv[++i]);
    else if (argv[i].startsWith("--users=")) users = Number(argv[i].slice(8));
  }
  if (!Number.isInteger(users) || users < 0) {
    throw new Error("--users must be an integer >= 0");
  }
  return { users };
}

const STATUSES = ["online", "idle", "dnd", "offline"];

/**
 * A user map of `n` users, the same for every server under test.
 * @param {number} n
 * @returns {Record<string, { uid: string; username: string; status: "online" | "idle" | "dnd" | "offline"; roleColor: string }>}
 */
export function makeUsers(n) {
  /** @type {Record<string, { uid: string; username: string; status: "online" | "idle" | "dnd" | "offline"; roleColor: string }>} */
  const out = {};
  for (let i = 0; i < n; i++) {
    const uid = "2" + String(i).padStart(17, "0");
    out[uid] = {
      uid,
      username: `user${i}`,
      status: /** @type {"online" | "idle" | "dnd" | "offline"} */ (STATUSES[i % 4]),
      roleColor: "#" +
        ((i * 2654435761) % 0xffffff).toString(16).padStart(6, "0"),
    };
  }
  return out;
}

/** The `server-list` frame. */
export const SERVER_LIST = JSON.stringify({
  type: "server-list",
  data: {
    [DID]: {
      id: SHORT_ID,
      name: SERVER_NAME,
      default: true,
      passworded: false,
    },
  },
});

/**
 * The `server-join` frame around an already serialised user map (like dback does).
 * @param {string} usersJson
 * @param {string} requested
 * @returns {string}
 */
export function serverJoinFrame(usersJson, requested) {
  return `{"type":"server-join","data":{"users":${usersJson},"request":${
    JSON.stringify({ server: requested })
  },"serverName":${JSON.stringify(SERVER_NAME)}}}`;
}

/**
 * An `error` frame.
 * @param {string} message
 * @returns {string}
 */
export function errorFrame(message) {
  return JSON.stringify({ type: "error", data: { message } });
}

/**
 * The `message` broadcast frame, byte for byte what dback sends.
 * @param {string} text
 * @returns {string}
 */
export function messageFrame(text) {
  return JSON.stringify({
    type: "message",
    server: DID,
    data: { uid: SPEAKER, message: text, channel: CHANNEL },
  });
}

/**
 * The request a client's `connect` frame names, or an error text.
 * @param {string} text
 * @returns {{ server: string } | { error: string }}
 */
export function parseConnect(text) {
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    return { error: "Invalid JSON" };
  }
  if (json === null || typeof json !== "object" || json.type !== "connect") {
    return { error: "Unknown event type" };
  }
  const s = json.data?.server;
  return {
    server: s == null || String(s).trim() === "" ? "default" : String(s).trim(),
  };
}

/** Wall-clock microseconds with sub-millisecond resolution, comparable across processes. */
export function microsNow() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The control endpoint. `broadcast(text)` must send one `message` broadcast
 * whose text is `text` to every joined client.
 *
 * `GET /publish/<count>/<rate>[/<pad>]`: with rate 0, publish `count`
 * broadcasts synchronously before answering; otherwise schedule them at
 * `rate` per second and answer at once. Each message text is
 * `<seq>:<send time in µs>:` followed by `pad` bytes of padding; `seq` counts
 * up from 1 over the life of the process. The answer is JSON
 * `{"first": <seq>, "last": <seq>}`.
 *
 * @param {(text: string) => void} broadcast
 * @returns {(path: string) => string | null} answers a path, or null when it is not a control path
 */
export function createPublisher(broadcast) {
  let seq = 0;
  /** @type {Map<number, string>} */
  const pads = new Map();
  /** @param {number} s @param {number} pad */
  const text = (s, pad) => {
    let p = pads.get(pad);
    if (p === undefined) pads.set(pad, p = "x".repeat(pad));
    return `${s}:${microsNow()}:${p}`;
  };
  return (path) => {
    const m = /^\/publish\/(\d+)\/(\d+(?:\.\d+)?)(?:\/(\d+))?$/.exec(path);
    if (!m) return null;
    const count = Number(m[1]);
    const rate = Number(m[2]);
    const pad = m[3] === undefined ? 0 : Number(m[3]);
    const first = seq + 1;
    seq += count;
    if (rate === 0) {
      for (let i = 0; i < count; i++) broadcast(text(first + i, pad));
    } else {
      const interval = 1000 / rate;
      const start = performance.now();
      let i = 0;
      const tick = () => {
        const due = Math.min(
          count,
          Math.floor((performance.now() - start) / interval) + 1,
        );
        while (i < due) broadcast(text(first + i++, pad));
        if (i < count) {
          setTimeout(
            tick,
            Math.max(0, start + i * interval - performance.now()),
          );
        }
      };
      tick();
    }
    return JSON.stringify({ first, last: first + count - 1 });
  };
}
