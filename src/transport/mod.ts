/**
 * Which transport serves a server (internal): the runtime's own by default
 * (Deno → `Deno.serve`, Bun → `Bun.serve`, Node.js → `node:http` + `ws`),
 * or the one named by the `transport` option. Nothing above this module
 * names a runtime. The Node transport imports `ws` only when it serves, so
 * Deno and Bun never load it unless asked to.
 *
 * @module
 */
import { bunTransport } from "./_bun.ts";
import { denoTransport } from "./_deno.ts";
import { nodeTransport } from "./_node.ts";
import type { SocketLimits, Transport } from "./types.ts";

/** The runtime adapters a server can be served by. */
export type TransportName = "deno" | "bun" | "node";

/** Every transport name, for option schemas and help texts. */
export const TRANSPORT_NAMES: readonly TransportName[] = ["deno", "bun", "node"];

/**
 * The transport of the runtime this code runs on. Bun and Deno both offer a
 * Node-compatible `process`, so they are asked first. Throws an `Error`
 * naming the runtimes dback supports when it is none of them.
 *
 * @example
 * ```ts
 * import { detectTransport } from "./mod.ts";
 * if (detectTransport() !== "deno") throw new Error("this example runs on Deno");
 * if (detectTransport({ Bun: {} }) !== "bun") throw new Error("Bun has a global Bun");
 * if (detectTransport({ process: { versions: { node: "24.0.0" } } }) !== "node") throw new Error();
 * let refused = "";
 * try {
 *   detectTransport({ navigator: { userAgent: "Cloudflare-Workers" } });
 * } catch (err) {
 *   refused = String(err);
 * }
 * if (!refused.includes("Deno, Bun or Node.js")) throw new Error(refused);
 * ```
 */
export function detectTransport(global: object = globalThis): TransportName {
  const g = global as {
    Bun?: unknown;
    Deno?: unknown;
    process?: { versions?: { node?: string } };
    navigator?: { userAgent?: string };
  };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  if (typeof g.process?.versions?.node === "string") return "node";
  const what = g.navigator?.userAgent ? ` (${g.navigator.userAgent})` : "";
  throw new Error(`dback runs on Deno, Bun or Node.js; this runtime${what} is none of them`);
}

/**
 * The transport named `name` (default: the runtime's own, see
 * {@link detectTransport}). `limits` are what the runtime enforces itself
 * where it can (Bun takes them per server, so they are fixed here). Throws
 * when the named transport cannot run here; `"node"` runs on Node.js and on
 * Deno (opt-in: it bounds what Deno's native WebSocket cannot).
 *
 * @example
 * ```ts
 * import { pickTransport } from "./mod.ts";
 * const limits = { idleTimeoutSeconds: 60, maxPayloadBytes: 8192, maxBufferedBytes: 1 << 24 };
 * if (pickTransport(undefined, limits).runtime !== "deno") throw new Error("Deno's own by default");
 * if (pickTransport("node", limits).runtime !== "node") throw new Error("node: opt-in on Deno");
 * let refused = "";
 * try {
 *   pickTransport("bun", limits);
 * } catch (err) {
 *   refused = String(err);
 * }
 * if (!refused.includes("needs the Bun runtime")) throw new Error(refused);
 * ```
 */
export function pickTransport(name: TransportName | undefined, limits: SocketLimits): Transport {
  switch (name ?? detectTransport()) {
    case "deno":
      if (!("Deno" in globalThis)) throw new Error("the deno transport needs the Deno runtime");
      return denoTransport;
    case "bun":
      if (!("Bun" in globalThis)) throw new Error("the bun transport needs the Bun runtime");
      return bunTransport(limits);
    case "node":
      return nodeTransport();
  }
}

/**
 * Whether this process may listen on and connect to loopback ports without
 * asking: always, except on Deno without network permission for
 * `127.0.0.1` (all ports). Never prompts.
 *
 * @example
 * ```ts
 * import { loopbackAllowed } from "./mod.ts";
 * const granted = Deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state === "granted";
 * if (loopbackAllowed() !== granted) throw new Error("as Deno's permissions say");
 * ```
 */
export function loopbackAllowed(): boolean {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno?.permissions?.querySync === undefined) return true;
  try {
    return deno.permissions.querySync({ name: "net", host: "127.0.0.1" }).state === "granted";
  } catch {
    return false;
  }
}
