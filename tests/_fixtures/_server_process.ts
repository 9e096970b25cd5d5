// A dback server in a child process, so that its RSS, its open files and its
// exit are its own: spawned (optionally under `ulimit -n`), its port read from
// its output, its output kept, and killed and awaited on dispose.

/** How to start the child. */
export interface SpawnOptions {
  /** Script and arguments after `deno run -A`. */
  args: string[];
  /** Open-files limit (soft and hard) for the child, via `ulimit -n`. */
  openFiles?: number;
  /** How the child announces its port; group 1 is the number. */
  portPattern?: RegExp;
}

/** A running child server. */
export class ServerProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  #out: { text: string };
  #drained: Promise<unknown>;
  #exited: Deno.CommandStatus | null = null;
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(
    child: Deno.ChildProcess,
    port: number,
    out: { text: string },
    drained: Promise<unknown>,
  ) {
    this.child = child;
    this.port = port;
    this.#out = out;
    this.#drained = drained;
    this.status = child.status.then((s) => this.#exited = s);
  }

  /** Start the child and wait until it has printed its port (at most 15 s). */
  static async spawn(options: SpawnOptions): Promise<ServerProcess> {
    const deno = [Deno.execPath(), "run", "-A", ...options.args];
    const cmd = options.openFiles === undefined
      ? new Deno.Command(deno[0], { args: deno.slice(1), stdout: "piped", stderr: "piped" })
      : new Deno.Command("bash", {
        args: ["-c", `ulimit -n ${options.openFiles} && exec "$0" "$@"`, ...deno],
        stdout: "piped",
        stderr: "piped",
      });
    const child = cmd.spawn();
    const out = { text: "" };
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) out.text += decoder.decode(chunk, { stream: true });
    };
    const drained = Promise.all([pump(child.stdout), pump(child.stderr)]);
    const pattern = options.portPattern ?? /PORT (\d+)/;
    const deadline = Date.now() + 15_000;
    let exited = false;
    child.status.then(() => exited = true);
    for (;;) {
      const m = out.text.match(pattern);
      if (m) return new ServerProcess(child, Number(m[1]), out, drained);
      if (exited || Date.now() > deadline) {
        if (!exited) child.kill("SIGKILL");
        await child.status;
        await drained;
        throw new Error(`server did not start:\n${out.text}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Everything the child wrote to stdout and stderr so far. */
  get output(): string {
    return this.#out.text;
  }

  /** The child's exit status, or `null` while it runs. */
  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** The child's resident memory in bytes (Linux). */
  rss(): number {
    const status = Deno.readTextFileSync(`/proc/${this.child.pid}/status`);
    return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;
  }

  /** How many files the child has open (Linux). */
  openFiles(): number {
    let n = 0;
    for (const _ of Deno.readDirSync(`/proc/${this.child.pid}/fd`)) n++;
    return n;
  }

  /** Wait for the exit, at most `ms`; `null` when still running. */
  async waitExit(ms: number): Promise<Deno.CommandStatus | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      this.status,
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), ms)),
    ]);
    clearTimeout(timer);
    return r;
  }

  /** Kill (SIGKILL) if still running, and wait for the child and its output. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#exited === null) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
    await this.status;
    await this.#drained;
  }
}

/** Write all of `bytes` (a TCP write may take only part). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Poll `cond` every 50 ms for at most `ms`; whether it became true. */
export async function eventually(cond: () => boolean | Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
