/**
 * Client frames (internal): a text frame (or a binary one holding UTF-8 text)
 * in, a normalised `connect` request or one of the protocol's error texts out. The only frame the
 * client sends is `connect`; everything else it could send is an error.
 *
 * @module
 */
import { z } from "zod";
import { type DiscordUser, ERRORS } from "./protocol.ts";

// Only what the login check uses is kept: extra fields a client sends are dropped at the edge.
const discordUserSchema = z.object({
  id: z.string().min(1).max(64),
  username: z.string().min(1).max(200),
});

/** A `connect` request after parsing and normalisation. */
export interface ConnectRequest {
  /** Requested short id, trimmed; `"default"` when missing or blank. */
  server: string;
  /** OAuth2 access token, when given and well-formed. */
  discordToken?: string;
  /** The claimed Discord user, when given and well-formed. */
  discordUser?: DiscordUser;
  /** Legacy password, when given. */
  password?: string;
}

/** Result of parsing one client frame. */
export type ParsedFrame =
  | { ok: true; request: ConnectRequest }
  | { ok: false; error: string };

const envelopeSchema = z.object({ type: z.unknown(), data: z.unknown().optional() });
const serverFieldSchema = z.union([z.string(), z.number(), z.null(), z.undefined()]);
const tokenSchema = z.string().min(1).max(4096);
const passwordSchema = z.string().max(4096);

/**
 * Parse a decoded text frame into a `connect` request or one of the
 * protocol's error texts. Never throws.
 *
 * @example
 * ```ts
 * import { parseClientFrame } from "./_client_frames.ts";
 * const parsed = parseClientFrame('{"type":"connect","data":{"server":" dworld "}}');
 * if (!parsed.ok || parsed.request.server !== "dworld") throw new Error("unexpected");
 * ```
 */
export function parseClientFrame(text: string): ParsedFrame {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: ERRORS.invalidJson };
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success || envelope.data.type !== "connect") {
    return { ok: false, error: ERRORS.unknownType };
  }
  const data = envelope.data.data;
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, error: ERRORS.invalidConnect };
  }
  const fields = data as Record<string, unknown>;
  const server = serverFieldSchema.safeParse(fields.server);
  if (!server.success) return { ok: false, error: ERRORS.invalidServer };
  const raw = server.data == null ? "" : String(server.data).trim();
  const request: ConnectRequest = { server: raw === "" ? "default" : raw };
  // An absent field is skipped before zod: a failed parse builds an error object, and most
  // connects carry none of these.
  if (fields.discordToken !== undefined) {
    const token = tokenSchema.safeParse(fields.discordToken);
    if (token.success) request.discordToken = token.data;
  }
  if (fields.discordUser !== undefined) {
    const user = discordUserSchema.safeParse(fields.discordUser);
    if (user.success) request.discordUser = user.data as DiscordUser;
  }
  if (fields.password !== undefined) {
    const password = passwordSchema.safeParse(fields.password);
    if (password.success) request.password = password.data;
  }
  return { ok: true, request };
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * {@link parseClientFrame} for a frame as the socket delivered it: a binary
 * frame must hold valid UTF-8 text. Never throws.
 *
 * @example
 * ```ts
 * import { decodeClientFrame } from "./_client_frames.ts";
 * const bytes = new TextEncoder().encode('{"type":"connect","data":{}}');
 * const parsed = decodeClientFrame(bytes);
 * if (!parsed.ok || parsed.request.server !== "default") throw new Error("unexpected");
 * const bad = decodeClientFrame(new Uint8Array([0xff]));
 * if (bad.ok || bad.error !== "Invalid binary encoding") throw new Error("must refuse");
 * ```
 */
export function decodeClientFrame(data: string | ArrayBuffer | Uint8Array): ParsedFrame {
  if (typeof data === "string") return parseClientFrame(data);
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return { ok: false, error: ERRORS.invalidBinary };
  }
  return parseClientFrame(text);
}

// Every path of the parser: a plain connect, one with every login field, and the refusals.
const WARM_FRAMES = [
  '{"type":"connect","data":{"server":"warm"}}',
  '{"type":"connect","data":{"server":7,"discordToken":"t","discordUser":{"id":"1","username":"u"},"password":"p"}}',
  '{"type":"connect","data":{"server":{}}}',
  '{"type":"connect","data":{"discordToken":"","discordUser":{"id":1}}}',
  '{"type":"connect"}',
  '{"type":"hello"}',
  "[]",
  "{",
];
let warm = false;

/**
 * Run the parser over every kind of frame a thousand times, once per
 * process. A JavaScript engine compiles code that has run often: unwarmed,
 * zod's parse of the first thousand `connect` frames of a fresh server costs
 * about ten times a warm one on Bun (JavaScriptCore), a join storm after a
 * restart pays it. Whether this run warmed it (`false`: already done).
 *
 * @example
 * ```ts
 * import { parseClientFrame, warmClientFrames } from "./_client_frames.ts";
 * warmClientFrames();
 * if (warmClientFrames()) throw new Error("once per process");
 * const parsed = parseClientFrame('{"type":"connect","data":{"server":"dworld"}}');
 * if (!parsed.ok || parsed.request.server !== "dworld") throw new Error("unexpected");
 * ```
 */
export function warmClientFrames(): boolean {
  if (warm) return false;
  warm = true;
  for (let i = 0; i < 1000; i++) parseClientFrame(WARM_FRAMES[i % WARM_FRAMES.length]);
  return true;
}
