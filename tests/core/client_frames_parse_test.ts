// The connect-frame parser skips zod for the usual frame (an object, a string `server`). This checks
// it against the earlier all-zod version (kept here as the reference) on a table of frames and on
// generated ones: the same request or the same protocol error for every input.
import assert from "node:assert/strict";
import { z } from "zod";
import { parseClientFrame, type ParsedFrame } from "../../src/_client_frames.ts";
import { ERRORS } from "../../src/protocol.ts";

const discordUserSchema = z.object({
  id: z.string().min(1).max(64),
  username: z.string().min(1).max(200),
});
const envelopeSchema = z.object({ type: z.unknown(), data: z.unknown().optional() });
const serverFieldSchema = z.union([z.string(), z.number(), z.null(), z.undefined()]);
const tokenSchema = z.string().min(1).max(4096);
const passwordSchema = z.string().max(4096);

function reference(text: string): ParsedFrame {
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
  // deno-lint-ignore no-explicit-any
  const request: any = { server: raw === "" ? "default" : raw };
  if (fields.discordToken !== undefined) {
    const token = tokenSchema.safeParse(fields.discordToken);
    if (token.success) request.discordToken = token.data;
  }
  if (fields.discordUser !== undefined) {
    const user = discordUserSchema.safeParse(fields.discordUser);
    if (user.success) request.discordUser = user.data;
  }
  if (fields.password !== undefined) {
    const password = passwordSchema.safeParse(fields.password);
    if (password.success) request.password = password.data;
  }
  return { ok: true, request };
}

const same = (text: string) => assert.deepEqual(parseClientFrame(text), reference(text), text);

const SERVERS = [
  '"bench"',
  '" dworld "',
  '""',
  '"  "',
  '"\\t x \\n"',
  "0",
  "42",
  "-1.5",
  "1e400",
  "null",
  "true",
  "false",
  "[]",
  '["a"]',
  "{}",
  '{"a":1}',
];
const ENVELOPES = [
  (d: string) => `{"type":"connect","data":${d}}`,
  (d: string) => `{"data":${d},"type":"connect","extra":[1,2]}`,
  (d: string) => `{"type":"Connect","data":${d}}`,
  (d: string) => `{"type":["connect"],"data":${d}}`,
  (d: string) => `{"__proto__":{"type":"connect"},"data":${d}}`,
  (d: string) => `{"type":"connect","__proto__":null,"data":${d}}`,
  (d: string) => `[{"type":"connect","data":${d}}]`,
];

Deno.test("connect frames: the table parses exactly as the all-zod reference does", () => {
  const fixed = [
    "",
    "not json",
    "null",
    "1",
    '"connect"',
    "[]",
    "{}",
    '{"type":"connect"}',
    '{"type":"connect","data":null}',
    '{"type":"connect","data":[]}',
    '{"type":"connect","data":"x"}',
    '{"type":"connect","data":{}}',
    '{"type":"ping","data":{}}',
  ];
  for (const text of fixed) same(text);
  let ok = 0;
  for (const envelope of ENVELOPES) {
    for (const server of SERVERS) {
      const texts = [
        `{"server":${server}}`,
        `{"server":${server},"discordToken":"t","password":"p"}`,
        `{"server":${server},"discordToken":"","discordUser":{"id":"1","username":"u","x":2}}`,
        `{"server":${server},"discordToken":5,"discordUser":{"id":""},"password":null}`,
      ].map(envelope);
      for (const text of texts) {
        same(text);
        if (parseClientFrame(text).ok) ok++;
      }
    }
  }
  // Both outcomes were compared: requests and errors.
  assert.ok(ok > 20, `ok ${ok}`);
  assert.deepEqual(parseClientFrame('{"type":"connect","data":{"server":7}}'), {
    ok: true,
    request: { server: "7" },
  });
  assert.deepEqual(parseClientFrame('{"type":"connect","data":{"server":true}}'), {
    ok: false,
    error: ERRORS.invalidServer,
  });
});
