// Drives tests/_fixtures/big_guild_server.ts in a child process on each runtime of the runtime
// suite: its port, its RSS (from /proc), its metrics and its warnings.
import type { LogRecord, MetricsSnapshot, ServerOptions } from "../../mod.ts";
import { rssOf, runtimeCommand, type RuntimeName, spawnChild } from "./runtimes.ts";

export { RUNTIMES } from "./runtimes.ts";

/** What the child serves. */
export interface GuildSpec {
  members: number;
  /** Share of offline members (default: every fourth). */
  offline?: number;
  presencePerSecond?: number;
  options?: ServerOptions;
  /** Deno only: permission flags after `-A` (e.g. `--deny-env=...`). */
  denoFlags?: string[];
  /**
   * Another checkout of the repository whose server to run (its fixture, its `src/`), e.g. an
   * older build for a before/after benchmark; default: this one.
   */
  root?: string;
}

/** A big-guild server in a child process. */
export class GuildProcess implements AsyncDisposable {
  readonly port: number;
  readonly pid: number;
  readonly logs: LogRecord[] = [];
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #waiters: Array<(msg: Record<string, unknown>) => boolean> = [];
  #reading: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    port: number,
    rest: AsyncGenerator<string>,
  ) {
    this.#child = child;
    this.port = port;
    this.pid = child.pid;
    this.#writer = child.stdin.getWriter();
    this.#reading = (async () => {
      for await (const line of rest) {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.log) this.logs.push(msg.log);
        this.#waiters = this.#waiters.filter((w) => !w(msg));
      }
    })();
  }

  /** Start the server under `runtime`; resolves once it listens. */
  static async start(runtime: RuntimeName, spec: GuildSpec): Promise<GuildProcess> {
    const { root, denoFlags, ...served } = spec;
    const full = runtime === "deno-node"
      ? { ...served, options: { ...served.options, transport: "node" as const } }
      : served;
    const { cmd, args } = await runtimeCommand(runtime, "tests/_fixtures/big_guild_server.ts", [
      JSON.stringify(full),
    ]);
    const at = args.indexOf("-A");
    if (denoFlags && at >= 0) args.splice(at + 1, 0, ...denoFlags);
    const { child, it } = spawnChild(cmd, args, root);
    for (;;) {
      const next = await it.next();
      if (next.done) throw new Error(`${runtime} server exited before listening`);
      const m = next.value.match(/^READY (\d+)$/);
      if (m) return new GuildProcess(child, Number(m[1]), it);
    }
  }

  /** `ws://` URL. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** The child's resident memory in bytes (Linux). */
  rss(): number {
    return rssOf(this.pid);
  }

  /**
   * The child's peak resident memory (VmHWM) in bytes since it started or since the last
   * {@link resetPeakRss} (Linux): the exact peak, which no sampling interval can miss.
   */
  peakRss(): number {
    const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
    return Number(status.match(/VmHWM:\s+(\d+) kB/)![1]) * 1024;
  }

  /** Reset the child's peak resident memory to its RSS now (Linux: `5` to `clear_refs`). */
  resetPeakRss(): void {
    Deno.writeTextFileSync(`/proc/${this.pid}/clear_refs`, "5");
  }

  /** The server's metrics now. */
  async metrics(): Promise<MetricsSnapshot> {
    const reply = new Promise<MetricsSnapshot>((resolve) =>
      this.#waiters.push((msg) => {
        if (!msg.metrics) return false;
        resolve(msg.metrics as MetricsSnapshot);
        return true;
      })
    );
    await this.#writer.write(new TextEncoder().encode("metrics\n"));
    return await reply;
  }

  /** Broadcast `count` presence changes of the big guild now. */
  async presence(count: number): Promise<void> {
    const reply = new Promise<void>((resolve) =>
      this.#waiters.push((msg) => {
        if (msg.presence === undefined) return false;
        resolve();
        return true;
      })
    );
    await this.#writer.write(new TextEncoder().encode(`presence ${count}\n`));
    await reply;
  }

  /** Warnings and errors logged so far whose message contains `text`. */
  warnings(text: string): LogRecord[] {
    return this.logs.filter((l) => l.message.includes(text));
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
    await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
  }
}
