/**
 * Which transport serves a server (internal): the runtime's own by default
 * (Deno → `Deno.serve`, Bun → `Bun.serve`, Node.js → `node:http` + `ws`),
 * or the one named by the `transport` option. Nothing above this module
 * names a runtime.
 *
 * The Node transport is loaded on first use through a dynamic import, so its
 * `ws` dependency never loads on Deno or Bun unless it is asked for.
 *
 * @module
 */
import { errorText } from "../_errors.ts";
import { bunTransport } from "./_bun.ts";
import { denoTransport } from "./_deno.ts";
import type { SocketLimits, Transport } from "./types.ts";

/** The transports there are. */
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
  throw new Error(
    `dback runs on Deno, Bun or Node.js; this runtime${what} is none of them. ` +
      `Pass the transport option to choose one.`,
  );
}

/**
 * The transport named `name` (default: the runtime's own, see
 * {@link detectTransport}). `limits` are what the runtime enforces itself
 * where it can (Bun takes them per server, so they are fixed here). Throws
 * when the named transport cannot run here.
 *
 * @example
 * ```ts
 * import { pickTransport } from "./mod.ts";
 * const limits = { idleTimeoutSeconds: 60, maxPayloadBytes: 8192, maxBufferedBytes: 1 << 24 };
 * if (pickTransport(undefined, limits).runtime !== "deno") throw new Error("Deno's own by default");
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
  const chosen = name ?? detectTransport();
  switch (chosen) {
    case "deno":
      if (!("Deno" in globalThis)) throw new Error("the deno transport needs the Deno runtime");
      return denoTransport;
    case "bun":
      if (!("Bun" in globalThis)) throw new Error("the bun transport needs the Bun runtime");
      return bunTransport(limits);
    case "node":
      // Runs on Node.js, and on Deno (opt-in) through its node:http.
      return lazyTransport("node", () => loadNodeTransport(limits));
  }
}

/** Where the Node transport lives; a variable keeps type checkers and bundlers from loading it eagerly. */
const NODE_TRANSPORT = "./_node.ts";

async function loadNodeTransport(limits: SocketLimits): Promise<Transport> {
  let mod: { nodeTransport?: (limits: SocketLimits) => Transport };
  try {
    mod = await import(NODE_TRANSPORT);
  } catch (err) {
    throw new Error(`the node transport could not be loaded: ${errorText(err)}`);
  }
  if (typeof mod.nodeTransport !== "function") {
    throw new Error("the node transport could not be loaded: no nodeTransport export");
  }
  return mod.nodeTransport(limits);
}

/**
 * A transport whose implementation is imported on first use. It has no
 * native rooms and no mounted handlers (the Node transport offers neither);
 * `clientIp` and `upgrade` need `ready()` (or `serve()`) first.
 */
function lazyTransport(runtime: TransportName, load: () => Promise<Transport>): Transport {
  let loaded: Transport | undefined;
  let loading: Promise<Transport> | undefined;
  const ready = () =>
    loading ??= load().then((t) => loaded = t, (err) => {
      loading = undefined; // a later start() tries again
      throw err;
    });
  const need = (): Transport => {
    if (!loaded) throw new Error(`the ${runtime} transport is not loaded: start the server first`);
    return loaded;
  };
  return {
    runtime,
    ready: async () => {
      await ready();
    },
    serve: async (options) => (await ready()).serve(options),
    clientIp: (req, ctx) => need().clientIp(req, ctx),
    upgrade: (req, ctx, limits, events) => need().upgrade(req, ctx, limits, events),
  };
}
