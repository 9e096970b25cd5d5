// The child processes of a run: a server under test (started from its target's
// command line, ready once it prints `READY <port>`, driven through
// `GET /publish/...`) and a load-generator process (loadgen/worker.ts, spoken
// to in JSON lines over stdin/stdout).

import { DENO, ROOT } from "./_paths.ts";
import { TARGETS } from "./_targets.ts";

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Yields the lines of a byte stream; keeps reading so the pipe never fills. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let pending = "";
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    pending += decoder.decode(bytes, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, nl);
      pending = pending.slice(nl + 1);
    }
  }
  if (pending) yield pending;
}

/** The last 40 lines a server wrote (stdout and stderr), for error messages. */
class Tail extends Array<string> {
  keep(line: string): void {
    this.push(line);
    if (this.length > 40) this.shift();
  }
}

/** One running server under test. */
export class ServerProc {
  exited = false;
  private constructor(
    readonly name: string,
    readonly child: Deno.ChildProcess,
    readonly port: number,
    readonly tail: string[],
  ) {
    child.status.then(() => this.exited = true);
  }

  get pid(): number {
    return this.child.pid;
  }

  /**
   * Starts `name` with a user map of `users` users and waits (up to 30 s) for
   * `READY <port>`. A server that cannot run here — its target says why, it
   * prints `UNAVAILABLE <reason>`, or it exits or stays silent — is returned
   * as `{ unavailable }`.
   */
  static async start(name: string, users: number): Promise<ServerProc | { unavailable: string }> {
    const cmd = TARGETS[name].command(users);
    if ("unavailable" in cmd) return cmd;
    const child = new Deno.Command(cmd.cmd[0], {
      args: cmd.cmd.slice(1),
      cwd: ROOT,
      env: cmd.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const tail = new Tail();
    (async () => {
      for await (const l of lines(child.stderr)) tail.keep(l);
    })();
    const out = lines(child.stdout);
    const ready = (async (): Promise<number | string> => {
      for await (const l of out) {
        tail.keep(l);
        const m = /^READY (\d+)/.exec(l);
        if (m) return Number(m[1]);
        const u = /^UNAVAILABLE (.*)/.exec(l);
        if (u) return u[1];
      }
      return `did not start: ${tail.slice(-5).join(" | ")}`;
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const port = await Promise.race([
      ready,
      new Promise<string>((r) => timer = setTimeout(() => r("no READY line within 30 s"), 30_000)),
    ]);
    clearTimeout(timer);
    if (typeof port === "string") {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      return { unavailable: port };
    }
    (async () => {
      for await (const l of out) tail.keep(l);
    })();
    return new ServerProc(name, child, port, tail);
  }

  /** Asks the server to publish `count` broadcasts at `rate`/s (0: at once); first and last seq. */
  async publish(count: number, rate: number, pad = 0): Promise<{ first: number; last: number }> {
    const r = await fetch(`http://127.0.0.1:${this.port}/publish/${count}/${rate}/${pad}`);
    if (!r.ok) throw new Error(`${this.name}: /publish answered ${r.status}`);
    return await r.json();
  }

  /** SIGTERM (the servers exit at once; a --cpu-prof profile gets written), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await this.child.status;
    clearTimeout(t);
  }
}

/** One JSON line from or to a load generator. */
// deno-lint-ignore no-explicit-any
export type Event = Record<string, any>;

/** One load-generator process and the clients it holds. */
export class WorkerProc {
  /** Highest sequence number every live client of this worker has received. */
  done = 0;
  /** Joined clients it counts (not the stalled one). */
  clients = 0;
  #queues = new Map<string, Event[]>();
  #waiters = new Map<string, Array<(e: Event) => void>>();
  #progress: Array<() => void> = [];
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly child: Deno.ChildProcess;

  constructor() {
    const child = new Deno.Command(DENO, {
      args: ["run", "-A", `${ROOT}/bench/loadgen/worker.ts`],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.child = child;
    this.#writer = child.stdin.getWriter();
    (async () => {
      for await (const l of lines(child.stdout)) {
        const e = JSON.parse(l) as Event;
        if (e.ev === "p") {
          this.done = e.d;
          const p = this.#progress;
          this.#progress = [];
          for (const f of p) f();
          continue;
        }
        const w = this.#waiters.get(e.ev);
        if (w?.length) w.shift()!(e);
        else {
          const q = this.#queues.get(e.ev) ?? [];
          q.push(e);
          this.#queues.set(e.ev, q);
        }
      }
    })();
  }

  get pid(): number {
    return this.child.pid;
  }

  send(cmd: Event): Promise<void> {
    return this.#writer.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
  }

  /** The next event named `ev` (queued ones first); rejects after `ms`. */
  next(ev: string, ms = 120_000): Promise<Event> {
    const q = this.#queues.get(ev);
    if (q?.length) return Promise.resolve(q.shift()!);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`worker: no ${ev} within ${ms} ms`)), ms);
      const list = this.#waiters.get(ev) ?? [];
      list.push((e) => {
        clearTimeout(t);
        resolve(e);
      });
      this.#waiters.set(ev, list);
    });
  }

  async ask(cmd: Event, ev: string, ms?: number): Promise<Event> {
    const p = this.next(ev, ms);
    await this.send(cmd);
    return await p;
  }

  /** Resolves at the next progress line. */
  progress(): Promise<void> {
    return new Promise((r) => this.#progress.push(r));
  }

  async exit(): Promise<void> {
    try {
      await this.send({ cmd: "exit" });
      await this.#writer.close();
    } catch { /* gone */ }
    await Promise.race([this.child.status, sleep(2000)]);
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}
