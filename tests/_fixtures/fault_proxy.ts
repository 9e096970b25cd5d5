// A TCP fault proxy for tests: sits between one client (a dback instance)
// and its server (redis-server) and does to the link what a real network
// does: cut it (every connection reset, new ones closed at once), black-hole
// it (connections accepted, nothing forwarded either way; what was sent is
// held and delivered, in order, at the heal), or delay each direction.

type Mode = "ok" | "cut" | "blackhole";

interface Chunk {
  /** `null`: the sender closed its side. */
  data: Uint8Array | null;
  /** When the proxy read it (performance.now()). */
  at: number;
}

/** One direction of one connection. */
class Pipe {
  readonly queue: Chunk[] = [];
  #wake: (() => void) | undefined;
  push(c: Chunk): void {
    this.queue.push(c);
    this.kick();
  }
  kick(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.kick(), ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

interface Link {
  client: Deno.TcpConn;
  server: Deno.TcpConn | undefined;
  up: Pipe;
  down: Pipe;
  closed: boolean;
}

/** A proxy listening on a free loopback port, forwarding to `127.0.0.1:targetPort`. */
export class FaultProxy {
  readonly port: number;
  #listener: Deno.TcpListener;
  #target: number;
  #mode: Mode = "ok";
  #delay = { up: 0, down: 0 };
  #links = new Set<Link>();
  #closed = false;
  #accepting: Promise<void>;

  private constructor(listener: Deno.TcpListener, target: number) {
    this.#listener = listener;
    this.#target = target;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  /** Start a proxy to `targetPort` on loopback. */
  static start(targetPort: number): FaultProxy {
    return new FaultProxy(Deno.listen({ hostname: "127.0.0.1", port: 0 }), targetPort);
  }

  /** `redis://127.0.0.1:PORT` of the proxy. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Connections open through the proxy now. */
  get connections(): number {
    return this.#links.size;
  }

  /** Reset every connection; new ones are closed at once until `heal()`. */
  cut(): void {
    this.#mode = "cut";
    for (const l of [...this.#links]) this.#drop(l);
  }

  /** Forward nothing either way (new connections accepted too); hold it all until `heal()`. */
  blackhole(): void {
    this.#mode = "blackhole";
  }

  /** Delay every chunk by `upMs` towards the server and `downMs` towards the client. */
  delay(upMs: number, downMs = upMs): void {
    this.#delay = { up: upMs, down: downMs };
    for (const l of this.#links) {
      l.up.kick();
      l.down.kick();
    }
  }

  /** Back to a plain link: held chunks are delivered in order, delays removed. */
  heal(): void {
    this.#mode = "ok";
    this.#delay = { up: 0, down: 0 };
    for (const l of this.#links) {
      l.up.kick();
      l.down.kick();
    }
  }

  /** Stop listening and close every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const l of [...this.#links]) this.#drop(l);
    await this.#accepting;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      if (this.#mode === "cut" || this.#closed) {
        client.close();
        continue;
      }
      const link: Link = {
        client,
        server: undefined,
        up: new Pipe(),
        down: new Pipe(),
        closed: false,
      };
      this.#links.add(link);
      void this.#run(link);
    }
  }

  async #run(link: Link): Promise<void> {
    try {
      link.server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
    } catch {
      this.#drop(link);
      return;
    }
    if (link.closed) {
      link.server.close();
      return;
    }
    await Promise.all([
      this.#read(link, link.client, link.up),
      this.#read(link, link.server, link.down),
      this.#write(link, link.server, link.up, "up"),
      this.#write(link, link.client, link.down, "down"),
    ]);
  }

  async #read(link: Link, from: Deno.TcpConn, pipe: Pipe): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        n = null;
      }
      if (link.closed) return;
      pipe.push({ data: n === null ? null : buf.slice(0, n), at: performance.now() });
      if (n === null) return;
    }
  }

  async #write(link: Link, to: Deno.TcpConn, pipe: Pipe, dir: "up" | "down"): Promise<void> {
    for (;;) {
      if (link.closed) return;
      const head = pipe.queue[0];
      if (!head || this.#mode !== "ok") {
        await pipe.wait();
        continue;
      }
      const due = head.at + this.#delay[dir];
      const now = performance.now();
      if (due > now) {
        await pipe.wait(due - now);
        continue;
      }
      pipe.queue.shift();
      if (head.data === null) {
        // The sender closed: so does the proxy, both ways, once everything before it went out.
        this.#drop(link);
        return;
      }
      try {
        for (let off = 0; off < head.data.length;) off += await to.write(head.data.subarray(off));
      } catch {
        this.#drop(link);
        return;
      }
    }
  }

  #drop(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    for (const c of [link.client, link.server]) {
      try {
        c?.close();
      } catch { /* closed */ }
    }
    link.up.kick();
    link.down.kick();
  }
}
