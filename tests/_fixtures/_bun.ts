// Test harness for Bun: find bun (or say how to install it), install the package's npm
// dependencies for it once, and drive tests/_fixtures/bun_fixture.ts as a child process.
import { fileURLToPath } from "node:url";
import { ensureTool } from "../../tools/_install.ts";
import type { LogRecord, ServerOptions } from "../../mod.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let ready: Promise<void> | undefined;

/** Make sure `bun` runs and package.json's dependencies resolve for it; throws with the fix when bun is missing. */
export function ensureBun(): Promise<void> {
  return ready ??= (async () => {
    // A fresh machine gets Bun from the npm registry (tools/_install.ts).
    await ensureTool("bun");
    const deps = Object.keys(
      JSON.parse(await Deno.readTextFile(`${ROOT}package.json`)).dependencies ?? {},
    );
    try {
      for (const dep of deps) await Deno.stat(`${ROOT}node_modules/${dep}/package.json`);
    } catch {
      const out = await new Deno.Command("bun", {
        args: ["install", "--frozen-lockfile"],
        cwd: ROOT,
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(`bun install failed: ${new TextDecoder().decode(out.stderr)}`);
      }
    }
  })();
}

/** Read a child's stdout as lines. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  const decoder = new TextDecoder();
  for await (const bytes of stream) {
    buf += decoder.decode(bytes, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}

/** What tests/_fixtures/bun_fixture.ts takes. */
export interface FixtureSpec {
  options?: ServerOptions;
  servers?: Record<string, unknown>;
  users?: Record<string, unknown>;
  mock?: { presenceIntervalMs?: number; messageIntervalMs?: number };
  mount?: boolean;
}

/** A WebSocketServer running under Bun in a child process. */
export class BunServer implements AsyncDisposable {
  readonly port: number;
  readonly pid: number;
  readonly runtime: string;
  readonly logs: LogRecord[] = [];
  readonly exited: Promise<Deno.CommandStatus>;
  stopped = false;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #replies = new Map<number, (r: { result?: unknown; error?: string }) => void>();
  #nextId = 1;
  #reading: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    ready: { port: number; pid: number; runtime: string },
    rest: AsyncGenerator<string>,
  ) {
    this.#child = child;
    this.port = ready.port;
    this.pid = ready.pid;
    this.runtime = ready.runtime;
    this.#writer = child.stdin.getWriter();
    this.exited = child.status;
    this.#reading = (async () => {
      for await (const line of rest) this.#line(line);
    })();
  }

  /** Start the fixture with `spec`; resolves once it listens. */
  static async start(spec: FixtureSpec = {}): Promise<BunServer> {
    await ensureBun();
    const child = new Deno.Command("bun", {
      args: ["run", "tests/_fixtures/bun_fixture.ts", JSON.stringify(spec)],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const it = lines(child.stdout);
    for (;;) {
      const next = await it.next();
      if (next.done) {
        await child.stdin.close().catch(() => {});
        throw new Error(`bun fixture exited with ${(await child.status).code} before listening`);
      }
      const msg = JSON.parse(next.value);
      if (msg.ready) return new BunServer(child, msg, it);
    }
  }

  #line(line: string): void {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.log) this.logs.push(msg.log);
    else if (msg.stopped) this.stopped = true;
    else if (typeof msg.id === "number") {
      this.#replies.get(msg.id)?.(msg);
      this.#replies.delete(msg.id);
    }
  }

  /** `ws://127.0.0.1:port`. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }
  /** `http://127.0.0.1:port`. */
  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Run one control operation in the fixture. */
  async call<T = unknown>(op: string, arg?: unknown): Promise<T> {
    const id = this.#nextId++;
    const reply = new Promise<{ result?: unknown; error?: string }>((r) =>
      this.#replies.set(id, r)
    );
    await this.#writer.write(new TextEncoder().encode(JSON.stringify({ id, op, arg }) + "\n"));
    const r = await reply;
    if (r.error !== undefined) throw new Error(r.error);
    return r.result as T;
  }

  /** SIGTERM and wait for the exit status. */
  async terminate(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone already */ }
    return await this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone already */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await this.exited;
    clearTimeout(timer);
    await this.#reading;
  }
}
