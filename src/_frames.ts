/**
 * Frames of the conversation (internal): the server list sent on open, the
 * `server-join` answer, and error frames. Broadcast frames are built by the
 * event table (`events.ts`).
 *
 * @module
 */
import type { PublicServerEntry, ServerInfo } from "./protocol.ts";

/**
 * The `server-list` frame: public fields only (never a legacy password).
 *
 * @example
 * ```ts
 * import { serverListFrame } from "./_frames.ts";
 * const frame = serverListFrame([
 *   { discordId: "1", id: "home", name: "Home", default: true, passworded: true, password: "pw" },
 * ]);
 * if (frame.includes("pw") || JSON.parse(frame).data["1"].id !== "home") throw new Error(frame);
 * ```
 */
export function serverListFrame(servers: readonly ServerInfo[]): string {
  const data: Record<string, PublicServerEntry> = {};
  for (const s of servers) {
    data[s.discordId] = { id: s.id, name: s.name, default: s.default, passworded: s.passworded };
  }
  return JSON.stringify({ type: "server-list", data });
}

/**
 * The `server-join` frame, built around an already serialised user map (it
 * may be megabytes: it is not parsed again). `clientId` appears only when known.
 *
 * @example
 * ```ts
 * import { serverJoinFrame } from "./_frames.ts";
 * const frame = JSON.parse(serverJoinFrame('{"7":{"uid":"7"}}', "default", "Home", undefined));
 * if (frame.data.request.server !== "default" || "clientId" in frame.data) throw new Error();
 * if (frame.data.users["7"].uid !== "7" || frame.data.serverName !== "Home") throw new Error();
 * ```
 */
export function serverJoinFrame(
  usersJson: string,
  requested: string,
  serverName: string,
  clientId: string | undefined,
): string {
  return `{"type":"server-join","data":{"users":${usersJson},"request":${
    JSON.stringify({ server: requested })
  },"serverName":${JSON.stringify(serverName)}${
    clientId === undefined ? "" : `,"clientId":${JSON.stringify(clientId)}`
  }}}`;
}

/** An `error` frame carrying one of the protocol's `ERRORS` (or another human-readable text).
 *
 * @example
 * ```ts
 * import { errorFrame } from "./_frames.ts";
 * const frame = errorFrame("Invalid JSON");
 * if (frame !== '{"type":"error","data":{"message":"Invalid JSON"}}') throw new Error(frame);
 * ``` */
export function errorFrame(message: string): string {
  return JSON.stringify({ type: "error", data: { message } });
}
