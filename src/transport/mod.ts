/**
 * Picks the runtime adapter (internal): the one asked for by the `transport`
 * option, else the runtime's own — Bun on Bun, Deno on Deno, Node elsewhere.
 * The Node transport loads `ws` only when it serves, so Deno and Bun never
 * load it unless asked to.
 *
 * @module
 */
import type { TransportName } from "../options.ts";
import { bunTransport } from "./_bun.ts";
import { denoTransport } from "./_deno.ts";
import { nodeTransport } from "./_node.ts";
import type { SocketLimits, Transport } from "./types.ts";

/** The runtime this code runs on. */
export function detectRuntime(): TransportName {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/** The transport for `settings`; throws when the one asked for cannot run here. */
export function pickTransport(
  settings: {
    transport?: TransportName;
    idleTimeoutSeconds: number;
    maxFrameBytes: number;
    maxBufferedBytes: number;
    maxTotalBufferedBytes?: number;
  },
): Transport {
  const runtime = detectRuntime();
  const name = settings.transport ?? runtime;
  if (name !== "node" && name !== runtime) {
    throw new TypeError(
      `Invalid WebSocketServer options: transport: "${name}" runs only on ${name}, not ${runtime}`,
    );
  }
  const limits: SocketLimits = {
    idleTimeoutSeconds: settings.idleTimeoutSeconds,
    maxPayloadBytes: settings.maxFrameBytes,
    maxBufferedBytes: settings.maxBufferedBytes,
  };
  switch (name) {
    case "bun":
      // Bun closes a socket past its limit itself: a join on its way may take a socket past
      // maxBufferedBytes (the global budget bounds the sum), so the sweep applies the rule.
      return bunTransport({
        ...limits,
        maxBufferedBytes: Math.min(
          settings.maxBufferedBytes + (settings.maxTotalBufferedBytes ?? 0),
          2 ** 31 - 1,
        ),
      });
    case "deno":
      return denoTransport;
    case "node":
      return nodeTransport();
  }
}
