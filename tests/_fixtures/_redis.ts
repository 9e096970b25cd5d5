// Test harness for the Redis cluster: a private redis-server (free port,
// persistence off, temp dir) and dback instances as real subprocesses.
import { ensureNode } from "./runtimes.ts";
import { WebSocketServer } from "../../mod.ts";
import { type RedisCluster, redisCluster } from "../../src/redis/mod.ts";
import { MockSource } from "../../src/sources/mock.ts";
import type { Client } from "./helpers.ts";
import { ensureTool, TOOLS } from "../../tools/_install.ts";

/** The one command that installs what these tests need. */
export const INSTALL_HINT: string = TOOLS["redis-server"].hint;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function ping(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buf = new Uint8Array(64);
      const n = await conn.read(buf);
      return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

/**
 * Install Debian's redis-server when it is missing and we may (root with apt-get), so the test
 * command works on a fresh machine; otherwise the tests fail with the command.
 */
export async function ensureRedisServer(): Promise<void> {
  await ensureTool("redis-server");
}

/** A redis-server of our own: `await using r = await RedisServer.start()`. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  #child: Deno.ChildProcess | undefined;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** `redis://127.0.0.1:PORT`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The server's process id (for CPU readings), while running. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Start one on a free port; fails with the install command when redis-server is missing. */
  static async start(): Promise<RedisServer> {
    const r = await RedisServer.reserve();
    await r.#spawn();
    return r;
  }

  /** A free port and a temp dir, not started yet (`restart()` starts it). */
  static async reserve(): Promise<RedisServer> {
    await ensureRedisServer();
    return new RedisServer(freePort(), await Deno.makeTempDir({ prefix: "dback-redis-" }));
  }

  async #spawn(): Promise<void> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("redis-server", {
        args: [
          "--port",
          String(this.port),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          this.dir,
          "--daemonize",
          "no",
          "--loglevel",
          "warning",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new Error(`redis-server is not installed; run: ${INSTALL_HINT}`);
      }
      throw err;
    }
    this.#child = child;
    const deadline = Date.now() + 5000;
    while (!(await ping(this.port))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${this.port}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stop the server (SIGTERM; nothing is saved). */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  }

  /** Start it again on the same port, empty. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** One `examples/main.ts --redis …` process. */
export class Instance {
  readonly lines: string[] = [];
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    port: number,
    done: Promise<void>,
    lines: string[],
  ) {
    this.#child = child;
    this.port = port;
    this.#done = done;
    this.lines = lines;
  }

  /** `ws://127.0.0.1:PORT`. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Start one and wait for its "listening on" line. */
  static async start(
    args: string[],
    denoFlags: string[] = [],
    runtime: "deno" | "bun" | "node" = "deno",
  ): Promise<Instance> {
    const cmd = runtime === "bun"
      ? "bun"
      : runtime === "node"
      ? await ensureNode()
      : Deno.execPath();
    const child = new Deno.Command(cmd, {
      args: [
        ...(runtime === "bun" ? ["run"] : runtime === "node" ? [] : ["run", "-A", ...denoFlags]),
        new URL("../../examples/main.ts", import.meta.url).pathname,
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const lines: string[] = [];
    const { promise: listening, resolve } = Promise.withResolvers<number>();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        rest += decoder.decode(chunk, { stream: true });
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          const m = line.match(/listening on http:\/\/[^:]+:(\d+)/);
          if (m) resolve(Number(m[1]));
        }
      }
    };
    const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {});
    const timeout = setTimeout(() => resolve(-1), 20_000);
    const early = child.status.then(() => resolve(-1));
    const port = await listening;
    clearTimeout(timeout);
    void early;
    const inst = new Instance(child, port, done, lines);
    if (port < 0) {
      await inst.stop();
      throw new Error(`instance did not start:\n${lines.join("\n")}`);
    }
    return inst;
  }

  /** Send a signal (SIGKILL, SIGSTOP, SIGCONT…). */
  signal(sig: Deno.Signal): void {
    try {
      this.#child.kill(sig);
    } catch { /* already gone */ }
  }

  /** Whether the process exits within `ms`. */
  async exited(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((res) => timer = setTimeout(() => res(false), ms)),
    ]);
    clearTimeout(timer);
    return r;
  }

  /** Wait until a log line matches. */
  async waitFor(re: RegExp, ms = 10_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (let i = from; i < this.lines.length; i++) {
        const m = this.lines[i].match(re);
        if (m) return m;
      }
      if (Date.now() > deadline) {
        throw new Error(`no line matching ${re} within ${ms} ms:\n${this.lines.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Whether this instance has said it is the publisher (and not stepped down since). */
  get isPublisher(): boolean {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      if (/is the publisher/.test(this.lines[i])) return true;
      if (/stops publishing/.test(this.lines[i])) return false;
    }
    return false;
  }

  /** SIGTERM, then SIGKILL after 5 s; waits for exit and the output pumps. */
  async stop(): Promise<void> {
    this.signal("SIGCONT");
    this.signal("SIGTERM");
    if (!(await this.exited(5000))) this.signal("SIGKILL");
    await this.#child.status;
    await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Start `n` instances against one Redis with test-friendly timings. */
export async function startInstances(
  n: number,
  redisUrl: string,
  namespace: string,
  extra: string[] = [],
  runtime: "deno" | "bun" | "node" = "deno",
): Promise<Instance[]> {
  const out: Instance[] = [];
  try {
    for (let i = 0; i < n; i++) {
      out.push(
        await Instance.start(
          [
            "--redis",
            redisUrl,
            "--redis-namespace",
            namespace,
            ...extra,
          ],
          [],
          runtime,
        ),
      );
    }
  } catch (err) {
    for (const i of out) await i.stop();
    throw err;
  }
  return out;
}

/** Close every client and stop every instance, ignoring failures. */
export async function cleanup(clients: Client[], instances: Instance[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await Promise.all(instances.map((i) => i.stop().catch(() => {})));
}

/** The user map a viewer holds: its join map with every presence frame applied. */
export function viewerMap(c: Client): Record<string, Record<string, unknown>> {
  let users: Record<string, Record<string, unknown>> = {};
  for (const f of c.frames) {
    if (f.type === "server-join") users = structuredClone(f.data.users);
    if (f.type !== "presence") continue;
    const d = f.data;
    if (d.delete) delete users[d.uid];
    else if (users[d.uid]) users[d.uid] = { ...users[d.uid], ...d };
    else if (d.username !== undefined) users[d.uid] = { ...d };
  }
  return users;
}

/** An in-process instance (library use) in the same cluster. */
export async function libraryInstance(
  url: string,
  namespace: string,
  extra: Partial<ConstructorParameters<typeof WebSocketServer>[0]> = {},
  candidate = false,
): Promise<{ server: WebSocketServer; cluster: RedisCluster; url: string }> {
  const cluster = redisCluster({
    url,
    namespace,
    leaseMs: 1000,
    logLevel: "silent",
    // By default the publisher is a subprocess, so tests can kill or pause it.
    candidate,
    source: new MockSource(),
  });
  const server = new WebSocketServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "silent",
    source: cluster.source,
    broker: cluster.broker,
    ...extra,
  });
  await server.start();
  return { server, cluster, url: `ws://127.0.0.1:${server.port}` };
}

/** Presence and chat frames a viewer received, as sent. */
export function liveFrames(c: Client): string[] {
  return c.raw.filter((r) =>
    r.startsWith('{"type":"presence"') || r.startsWith('{"type":"message"')
  );
}

/**
 * Throw unless viewers (in the order they joined) saw one stream: each later
 * joiner's frames, less the last few still in flight at the end, appear whole
 * and in order in every earlier joiner's frames.
 */
export function assertOneStream(clients: Client[], minFrames: number): void {
  const streams = clients.map(liveFrames);
  for (let i = 0; i < streams.length; i++) {
    if (streams[i].length < minFrames) {
      throw new Error(`viewer ${i} got only ${streams[i].length} frames`);
    }
    const core = streams[i].slice(1, -3).join("\n");
    for (let j = 0; j < i; j++) {
      if (!streams[j].join("\n").includes(core)) {
        throw new Error(`viewers ${j} and ${i} saw different sequences`);
      }
    }
  }
}
