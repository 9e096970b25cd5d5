/**
 * The flags every dback command shares (the mock command and the Discord
 * one): where to listen, TLS, origins, proxies, `/metrics`, Redis, and one
 * flag per limit of the server options, named as the option in kebab-case
 * (`--max-connections-per-ip` ⇔ `maxConnectionsPerIp`) and checked with the
 * option's own zod schema. A new limit in the options is a new flag here
 * with no code to write.
 *
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import type { ParseArgsOptionsConfig } from "node:util";
import { z } from "zod";
import { errorText } from "./_errors.ts";
import { intFlag } from "./_flags.ts";
import { LOG_LEVELS, type LogLevel } from "./log.ts";
import { optionsSchema, type ServerOptions, type TransportName } from "./options.ts";

/** `maxConnectionsPerIp` → `max-connections-per-ip`. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** One numeric limit of the server options, as a flag. */
export interface LimitFlag {
  /** The flag without its dashes. */
  flag: string;
  /** The option it sets. */
  key: keyof ServerOptions;
  /** Its default, from the schema. */
  defaultValue: number;
  /** Its `--help` line, from the schema's description. */
  description: string;
  /** Whether it takes whole numbers only. */
  integer: boolean;
}

// Options that are numbers but not limits an operator tunes here.
const NOT_LIMITS = new Set(["port"]);

/** Every numeric option of the schema with a default: the limits. */
export const LIMIT_FLAGS: readonly LimitFlag[] = Object.entries(optionsSchema.shape).flatMap(
  ([key, field]) => {
    if (NOT_LIMITS.has(key) || !(field instanceof z.ZodDefault)) return [];
    const inner = field.unwrap();
    if (!(inner instanceof z.ZodNumber)) return [];
    return [{
      flag: kebab(key),
      key: key as keyof ServerOptions,
      defaultValue: field.parse(undefined) as number,
      description: field.description ?? inner.description ?? "",
      integer: inner.isInt,
    }];
  },
);

function limitValue(l: LimitFlag) {
  const field = optionsSchema.shape[l.key as keyof typeof optionsSchema.shape] as z.ZodType;
  return z.string().transform((s, ctx) => {
    const n = /^\s*$/.test(s) ? NaN : Number(s);
    const bad = !Number.isFinite(n)
      ? `--${l.flag} must be a number`
      : l.integer && !Number.isInteger(n)
      ? `--${l.flag} must be a whole number`
      : null;
    if (bad) {
      ctx.addIssue({ code: "custom", message: bad });
      return z.NEVER;
    }
    const r = field.safeParse(n);
    if (!r.success) {
      ctx.addIssue({ code: "custom", message: `--${l.flag}: ${r.error.issues[0].message}` });
      return z.NEVER;
    }
    return n;
  });
}

/** A value checked by the option's own schema entry; the message names the flag. */
function optionValue<T>(flag: string, key: keyof typeof optionsSchema.shape, from: z.ZodType<T>) {
  const field = optionsSchema.shape[key] as z.ZodType;
  return from.transform((v, ctx) => {
    const r = field.safeParse(v);
    if (!r.success) {
      ctx.addIssue({ code: "custom", message: `--${flag}: ${r.error.issues[0].message}` });
      return z.NEVER;
    }
    return v;
  });
}

const list = z.array(z.string());
const commaList = list.transform((vs) =>
  vs.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "")
);

/** The shared flags for `node:util` `parseArgs`. */
export const SERVER_FLAG_CONFIG: ParseArgsOptionsConfig = {
  port: { type: "string" },
  host: { type: "string" },
  "static-dir": { type: "string" },
  "log-level": { type: "string" },
  "allowed-origin": { type: "string", multiple: true },
  "public-origin": { type: "string", multiple: true },
  "trust-proxy": { type: "string", multiple: true },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "metrics-port": { type: "string" },
  "metrics-host": { type: "string" },
  "no-metrics": { type: "boolean" },
  transport: { type: "string" },
  redis: { type: "string" },
  "redis-namespace": { type: "string" },
  "redis-lease-ms": { type: "string" },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...Object.fromEntries(LIMIT_FLAGS.map((l) => [l.flag, { type: "string" as const }])),
};

/** The shared flags' zod schema; a command extends it with its own. */
export const serverFlagsSchema = z.object({
  port: intFlag("port", 0, 65535).optional(),
  host: z.string().min(1, "--host must not be empty").optional(),
  "static-dir": z.string().min(1, "--static-dir must not be empty").optional(),
  "log-level": z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]], {
    error: `--log-level must be one of ${LOG_LEVELS.join(", ")}`,
  }).optional(),
  "allowed-origin": optionValue("allowed-origin", "allowedOrigins", list).optional(),
  "public-origin": optionValue("public-origin", "publicOrigins", list).optional(),
  "trust-proxy": optionValue("trust-proxy", "trustProxy", commaList).optional(),
  "tls-cert": z.string().min(1, "--tls-cert must name a file").optional(),
  "tls-key": z.string().min(1, "--tls-key must name a file").optional(),
  "metrics-port": intFlag("metrics-port", 0, 65535).optional(),
  "metrics-host": z.string().min(1, "--metrics-host must not be empty").optional(),
  "no-metrics": z.boolean().optional(),
  transport: z.enum(["deno", "bun", "node"], {
    error: "--transport must be one of deno, bun, node",
  }).optional(),
  redis: z.string().regex(/^rediss?:\/\/\S+$/, "--redis must be redis://host:port").optional(),
  "redis-namespace": z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "--redis-namespace must be 1-64 letters, digits, '_', '.' or '-'",
  ).optional(),
  "redis-lease-ms": intFlag("redis-lease-ms", 300, 600_000).optional(),
  version: z.boolean().optional(),
  help: z.boolean().optional(),
  ...Object.fromEntries(LIMIT_FLAGS.map((l) => [l.flag, limitValue(l).optional()])),
});

/** What the shared flags ask for. */
export interface ServerFlags {
  /** `--port` (default 3000). */
  port: number;
  /** `--host` (default localhost). */
  hostname: string;
  /** `--log-level`, when given. */
  logLevel?: LogLevel;
  /** `--static-dir`, when given. */
  staticDir?: string;
  /** Options the flags set (limits, origins, proxies, metrics); unset ones are absent. */
  options: ServerOptions;
  /** `--tls-cert` and `--tls-key` (files, read by {@link loadServerFiles}). */
  tlsFiles?: { cert: string; key: string };
  /** `--redis` and its companions. */
  redis?: { url: string; namespace?: string; leaseMs?: number };
}

/**
 * Turn parsed shared flags into {@link ServerFlags}, or the message of the
 * first problem (every message names its flag).
 *
 * @example
 * ```ts
 * import { serverFlags } from "./_server_flags.ts";
 * const r = serverFlags({ "max-connections-per-ip": 2, "trust-proxy": ["127.0.0.1"] });
 * if (!r.ok || r.value.options.maxConnectionsPerIp !== 2) throw new Error("limit not set");
 * if (r.value.options.trustProxy?.[0] !== "127.0.0.1") throw new Error("proxy not set");
 * ```
 */
export function serverFlags(
  f: Record<string, unknown>,
): { ok: true; value: ServerFlags } | { ok: false; message: string } {
  const options: ServerOptions = {};
  const set = options as Record<string, unknown>;
  for (const l of LIMIT_FLAGS) if (f[l.flag] !== undefined) set[l.key] = f[l.flag];
  if (f["allowed-origin"] !== undefined) options.allowedOrigins = f["allowed-origin"] as string[];
  if (f["public-origin"] !== undefined) options.publicOrigins = f["public-origin"] as string[];
  if (f["trust-proxy"] !== undefined) options.trustProxy = f["trust-proxy"] as string[];
  if (f.transport !== undefined) options.transport = f.transport as TransportName;
  if (f["no-metrics"] && f["metrics-port"] !== undefined) {
    return { ok: false, message: "--no-metrics and --metrics-port exclude each other" };
  }
  if (f["no-metrics"]) options.metrics = false;
  else if (f["metrics-port"] !== undefined) {
    options.metrics = { port: f["metrics-port"] as number };
    if (f["metrics-host"] !== undefined) options.metrics.hostname = f["metrics-host"] as string;
  }
  if (f["metrics-host"] !== undefined && f["metrics-port"] === undefined) {
    return { ok: false, message: "--metrics-host needs --metrics-port" };
  }
  if ((f["tls-cert"] === undefined) !== (f["tls-key"] === undefined)) {
    return { ok: false, message: "--tls-cert and --tls-key go together" };
  }
  // Rules across options (maxBufferedBytes >= highWaterBytes) are the schema's too.
  const whole = optionsSchema.safeParse(options);
  if (!whole.success) {
    const issue = whole.error.issues[0];
    return { ok: false, message: `--${kebab(String(issue.path[0] ?? ""))}: ${issue.message}` };
  }
  const redis = f.redis as string | undefined;
  if (redis === undefined && (f["redis-namespace"] ?? f["redis-lease-ms"]) !== undefined) {
    return { ok: false, message: "--redis-namespace and --redis-lease-ms need --redis" };
  }
  return {
    ok: true,
    value: {
      port: (f.port as number | undefined) ?? 3000,
      hostname: (f.host as string | undefined) ?? "localhost",
      ...(f["log-level"] !== undefined ? { logLevel: f["log-level"] as LogLevel } : {}),
      ...(f["static-dir"] !== undefined ? { staticDir: f["static-dir"] as string } : {}),
      options,
      ...(f["tls-cert"] !== undefined
        ? { tlsFiles: { cert: f["tls-cert"] as string, key: f["tls-key"] as string } }
        : {}),
      ...(redis !== undefined
        ? {
          redis: {
            url: redis,
            namespace: f["redis-namespace"] as string | undefined,
            leaseMs: f["redis-lease-ms"] as number | undefined,
          },
        }
        : {}),
    },
  };
}

/**
 * Check `--static-dir` and read the `--tls-*` files: the options to add, or
 * one line saying which flag's file is wrong.
 */
export async function loadServerFiles(
  flags: ServerFlags,
): Promise<{ ok: true; options: ServerOptions } | { ok: false; message: string }> {
  const options: ServerOptions = {};
  if (flags.staticDir !== undefined) {
    let what = "no such directory";
    try {
      if ((await stat(flags.staticDir)).isDirectory()) what = "";
      else what = "not a directory (it is a file)";
    } catch {
      // no such directory
    }
    if (what) return { ok: false, message: `--static-dir ${flags.staticDir}: ${what}` };
    options.staticDir = flags.staticDir;
  }
  if (flags.tlsFiles) {
    const pem: Record<string, string> = {};
    for (const [which, path] of Object.entries(flags.tlsFiles)) {
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (err) {
        const code = (err as { code?: string }).code;
        const why = code === "ENOENT" ? "no such file" : errorText(err);
        return { ok: false, message: `--tls-${which} ${path}: ${why}` };
      }
      const label = which === "cert" ? "CERTIFICATE" : "PRIVATE KEY";
      if (!text.includes("-----BEGIN ") || !text.includes(label)) {
        return { ok: false, message: `--tls-${which} ${path}: not a PEM ${label.toLowerCase()}` };
      }
      pem[which] = text;
    }
    options.tls = { cert: pem.cert, key: pem.key };
  }
  return { ok: true, options };
}

function line(left: string, text: string): string {
  return left.length >= 29 ? `  ${left}\n${" ".repeat(31)}${text}` : `  ${left.padEnd(29)}${text}`;
}

/** The `--help` lines of the shared flags. */
export const SERVER_FLAGS_USAGE: string = [
  line("--port <n>", "TCP port, 0 picks a free one (default 3000)"),
  line("--host <name>", "interface to bind (default localhost; 0.0.0.0 for all)"),
  line("--static-dir <dir>", "serve these files (e.g. the d-zone client) instead of"),
  line("", "the built-in page; must exist"),
  line("--log-level <level>", "debug, info, warn, error or silent (default info,"),
  line("", "or the DBACK_LOG_LEVEL environment variable)"),
  line("--allowed-origin <origin>", "accept WebSocket upgrades only from this Origin;"),
  line("", "repeat for more (default: any origin)"),
  line("--public-origin <origin>", "origin this server's page is served under (behind a"),
  line("", "proxy: https://dzone.example); always allowed; repeatable"),
  line("--trust-proxy <ip|cidr>", "take the client address from X-Forwarded-For/Forwarded"),
  line("", "when the peer is one of these; comma-separated or"),
  line("", "repeated (default: none)"),
  line("--tls-cert <file>", "serve https/wss with this PEM certificate (chain)"),
  line("--tls-key <file>", "... and this PEM private key"),
  line("--metrics-port <n>", "serve /metrics on this port only (default: the main port)"),
  line("--metrics-host <name>", "interface of the metrics port (default: --host)"),
  line("--no-metrics", "no /metrics at all"),
  line("--transport <name>", "deno, bun or node (default: the runtime's own); node on"),
  line("", "Deno serves through node:http + ws (see docs/runtimes.md)"),
  line("--redis <url>", "join a cluster over Redis (redis://host:port)"),
  line("--redis-namespace <ns>", "key and channel prefix in Redis (default dback)"),
  line("--redis-lease-ms <ms>", "publisher lease (default 5000)"),
  line("--version", "print the version and exit"),
  line("-h, --help", "print this help and exit"),
  "",
  "Limits (each is the server option of the same name in camelCase):",
  ...LIMIT_FLAGS.map((l) => {
    // Wrapped to 100 columns: the descriptions come from the schema, some are long.
    const rows: string[] = [];
    const words = [...l.description.split(" "), `(default ${l.defaultValue})`];
    for (const word of words.filter((w) => w !== "")) {
      const last = rows.length - 1;
      if (last >= 0 && rows[last].length + 1 + word.length <= 69) rows[last] += ` ${word}`;
      else rows.push(word);
    }
    return rows.map((r, n) => line(n === 0 ? `--${l.flag} <n>` : "", r)).join("\n");
  }),
].join("\n");
