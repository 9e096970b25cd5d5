/**
 * The Deno transport (internal): `Deno.serve` and `Deno.upgradeWebSocket`.
 * Deno's server WebSocket cannot bound an inbound message before buffering
 * it, nor tear down a socket whose peer stopped reading: `terminate()`
 * answers `false` and the README says what that costs.
 *
 * @module
 */
import { serveGuarded } from "./_accept_guard.ts";
import type {
  Listener,
  RequestContext,
  SocketLimits,
  Transport,
  WsEvents,
  WsPeer,
} from "./types.ts";

class DenoPeer implements WsPeer {
  #ws: WebSocket;
  constructor(ws: WebSocket) {
    this.#ws = ws;
  }
  send(frame: string): void {
    try {
      this.#ws.send(frame);
    } catch {
      // closed meanwhile: the close event tells the core
    }
  }
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }
  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }
  close(code: number, reason: string): void {
    const state = this.#ws.readyState;
    if (state === WebSocket.CLOSING || state === WebSocket.CLOSED) return;
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closing
    }
  }
  terminate(): boolean {
    return false;
  }
}

/** `Deno.serve` + `Deno.upgradeWebSocket`. */
export const denoTransport: Transport = {
  runtime: "deno",

  serve({ port, hostname, tls, fetch, onError, log }): Promise<Listener> {
    return new Promise((resolve, reject) => {
      try {
        // Guarded: an accept failure (EMFILE) must not end the process or the listening.
        const server = serveGuarded(
          { port, hostname, onListen: () => {}, onError, ...(tls ?? {}) },
          fetch as (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response,
          { log },
        );
        resolve({
          hostname: server.addr.hostname,
          port: server.addr.port,
          shutdown: async () => {
            await server.shutdown();
            await server.finished;
          },
        });
      } catch (err) {
        reject(err);
      }
    });
  },

  clientIp(_req: Request, ctx: RequestContext): string | null {
    const addr = (ctx as { remoteAddr?: { hostname?: string } } | undefined)?.remoteAddr;
    const ip = addr?.hostname;
    // A peer that reset before we looked is reported as the unspecified address.
    if (!ip || ip === "0.0.0.0" || ip === "::") return null;
    return ip;
  },

  upgrade(req: Request, _ctx: RequestContext, limits: SocketLimits, events: WsEvents): Response {
    const { socket, response } = Deno.upgradeWebSocket(req, {
      idleTimeout: limits.idleTimeoutSeconds,
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => events.open(new DenoPeer(socket));
    socket.onmessage = (e) => events.message(e.data);
    socket.onclose = (e) => events.close(e.code);
    socket.onerror = () => {}; // the close event that follows says what happened
    return response;
  },
};
