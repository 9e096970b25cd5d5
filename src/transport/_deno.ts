/**
 * The Deno transport (internal): `Deno.serve` and `Deno.upgradeWebSocket`.
 * Deno's server WebSocket cannot bound an inbound message before buffering
 * it, nor tear down a socket whose peer stopped reading: `terminate()`
 * answers `false`, and whether a dropped socket is really gone is read
 * from the kernel's TCP table (Deno's close event does not prove it).
 *
 * @module
 */
import { serveGuarded } from "./_accept_guard.ts";
import { remoteKeys, socketHeld } from "./_tcp_table.ts";
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
  #remote: { hostname?: string; port?: number } | undefined;
  constructor(ws: WebSocket, remote: { hostname?: string; port?: number } | undefined) {
    this.#ws = ws;
    // Only a dropped socket needs its table keys: made then, not held by every peer.
    this.#remote = remote;
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
  gone(): boolean | undefined {
    // Deno's close event proves nothing: after a frame that follows its close frame, Deno
    // reports the socket closed (code 0) but keeps it, and its unsent bytes, while the peer lives.
    const r = this.#remote;
    const held = socketHeld(r?.hostname && r.port ? remoteKeys(r.hostname, r.port) : []);
    return held === undefined ? undefined : !held;
  }
}

/** `Deno.serve` + `Deno.upgradeWebSocket`. */
export const denoTransport: Transport = {
  runtime: "deno",
  // Deno holds each unsent frame (100 KB frames: 1.7 bytes of RSS per unsent byte) and a write
  // buffer the size of the largest frame it has sent, until the socket closes.
  memory: { factor: 1.7, keepsLargestFrame: true },

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

  upgrade(req: Request, ctx: RequestContext, limits: SocketLimits, events: WsEvents): Response {
    // Read before the upgrade: Deno's request info is gone after it.
    const addr = (ctx as { remoteAddr?: { hostname?: string; port?: number } } | undefined)
      ?.remoteAddr;
    const remote = addr && { hostname: addr.hostname, port: addr.port };
    const { socket, response } = Deno.upgradeWebSocket(req, {
      idleTimeout: limits.idleTimeoutSeconds,
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => events.open(new DenoPeer(socket, remote));
    socket.onmessage = (e) => events.message(e.data);
    socket.onclose = (e) => events.close(e.code);
    socket.onerror = () => {}; // the close event that follows says what happened
    return response;
  },
};
