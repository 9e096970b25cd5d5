// Test harness for every runtime dback claims: find (or install) bun and a Node.js >= 22.18,
// install the package's npm dependencies once, and drive tests/_fixtures/server_child.ts as a
// child process under Deno, Deno with the Node transport, Bun or Node.
import { fileURLToPath } from "node:url";
import type { LogRecord, ServerOptions } from "../../mod.ts";
import { ensureTool, TOOLS } from "../../tools/_install.ts";
import { stepsAtOnce } from "./steps.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The runtimes (and transports) the runtime suite runs against. */
export type RuntimeName = "deno" | "deno-node" | "bun" | "node";

const ALL: readonly RuntimeName[] = ["deno", "deno-node", "bun", "node"];
const only = Deno.env.get("DBACK_TEST_RUNTIMES")?.split(",");

/**
 * The runtimes the suite runs against, in order: all of them, or those listed in
 * `DBACK_TEST_RUNTIMES` (comma-separated), to run one alone.
 */
export const RUNTIMES: readonly RuntimeName[] = only ? ALL.filter((r) => only.includes(r)) : ALL;

/** Whether `cmd args` runs and exits 0. */
async function runs(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false; // not found
  }
}

async function output(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

let bunReady: Promise<void> | undefined;

/** Make sure `bun` runs and package.json's dependencies resolve for it; throws with the fix when bun is missing. */
export function ensureBun(): Promise<void> {
  return bunReady ??= (async () => {
    // A fresh machine gets Bun from the npm registry (tools/_install.ts).
    await ensureTool("bun");
    await ensureDeps();
  })();
}

let nodePath: Promise<string> | undefined;

/**
 * The path of a Node.js >= 22.18: `node` on the PATH when recent enough, else
 * `node@24` from npm's cache (tools/_install.ts fetches it with `npx` when missing).
 */
export function ensureNode(): Promise<string> {
  return nodePath ??= (async () => {
    await ensureTool("node");
    const recent = (v: string | null) => {
      const [major, minor] = (v ?? "").replace(/^v/, "").split(".").map(Number);
      return major > 22 || (major === 22 && minor >= 18);
    };
    let path: string | null = null;
    if (recent(await output("node", ["--version"]))) {
      path = await output("node", ["-p", "process.execPath"]);
    } else {
      path = await output("npx", ["-y", "node@24", "-p", "process.execPath"]);
    }
    if (!path || !recent(await output(path, ["--version"]))) {
      throw new Error(`Node.js >= 22.18 not found; ${TOOLS.node.hint}`);
    }
    await ensureDeps();
    return path;
  })();
}

let depsReady: Promise<void> | undefined;

/** package.json's dependencies (optional ones too) in ./node_modules, for Bun and Node (Deno uses deno.json). */
function ensureDeps(): Promise<void> {
  return depsReady ??= (async () => {
    const manifest = JSON.parse(await Deno.readTextFile(`${ROOT}package.json`));
    const deps = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies });
    try {
      for (const dep of deps) await Deno.stat(`${ROOT}node_modules/${dep}/package.json`);
      return;
    } catch { /* one is missing */ }
    const [cmd, args] = await runs("bun", ["--version"])
      ? ["bun", ["install", "--frozen-lockfile"]]
      : ["npm", ["install", "--no-save", "--no-package-lock"]];
    const out = await new Deno.Command(cmd as string, {
      args: args as string[],
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`${cmd} install failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  })();
}

/** The command line that runs `script args` on `runtime`. */
export async function runtimeCommand(
  runtime: RuntimeName,
  script: string,
  args: string[],
): Promise<{ cmd: string; args: string[] }> {
  switch (runtime) {
    case "deno":
    case "deno-node":
      return {
        cmd: Deno.execPath(),
        args: ["run", "-A", "--v8-flags=--expose-gc", script, ...args],
      };
    case "bun":
      await ensureBun();
      return { cmd: "bun", args: ["run", script, ...args] };
    case "node":
      return { cmd: await ensureNode(), args: ["--expose-gc", script, ...args] };
  }
}

/** Read a child's stdout as lines. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
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

/** Start `cmd args` in `cwd` with nothing on its stdin and both outputs piped. */
function spawnPiped(cmd: string, args: string[], cwd: string): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, cwd, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
}

/**
 * Start `cmd args` in `cwd`, wait for its "listening on http://127.0.0.1:PORT" line, run
 * `body(port)`, then SIGTERM it: its exit code and all it printed (stdout, then stderr).
 */
export async function whileListening(
  cmd: string,
  args: string[],
  cwd: string,
  body: (port: number) => Promise<void>,
): Promise<{ code: number; out: string }> {
  const child = spawnPiped(cmd, args, cwd);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  try {
    let port = 0;
    while (!port) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`exited before listening: ${out}${await stderr}`);
      out += value;
      port = Number(out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)?.[1] ?? 0);
    }
    await body(port);
  } finally {
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    out += await stderr;
  }
  return { code: (await child.status).code, out };
}

/**
 * Run `cmd args` in `cwd` to its end, nothing on its stdin, its output collected; a child still
 * running after `ms` is killed (SIGKILL), so a hang fails the caller instead of the whole run.
 */
export async function outputWithin(
  cmd: string,
  args: string[],
  ms: number,
  cwd: string = ROOT,
): Promise<Deno.CommandOutput> {
  const child = spawnPiped(cmd, args, cwd);
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Spawn a fixture child in the repository (or in `cwd`, another checkout): commands on its
 * stdin, its stdout read as lines.
 */
export function spawnChild(
  cmd: string,
  args: string[],
  cwd: string = ROOT,
): { child: Deno.ChildProcess; it: AsyncGenerator<string> } {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  return { child, it: lines(child.stdout) };
}

/** A process's resident memory in bytes (Linux), read from outside: no GC, no round trip. */
export function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;
}

/** What tests/_fixtures/server_child.ts takes. */
export interface FixtureSpec {
  options?: ServerOptions;
  servers?: Record<string, unknown>;
  users?: Record<string, unknown>;
  mock?: { presenceIntervalMs?: number; messageIntervalMs?: number };
  mount?: boolean;
  denyLogins?: boolean;
  /** Open-files limit (soft and hard) of the child, via `ulimit -n`. */
  openFiles?: number;
}

/** A WebSocketServer running on one runtime in a child process. */
export class RuntimeServer implements AsyncDisposable {
  readonly port: number;
  readonly pid: number;
  /** What the server reports as its transport (`server.runtime`). */
  readonly runtime: string;
  readonly logs: LogRecord[] = [];
  readonly exited: Promise<Deno.CommandStatus>;
  stopped = false;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #replies = new Map<number, (r: { result?: unknown; error?: string }) => void>();
  #nextId = 1;
  #reading: Promise<void>;

  protected constructor(
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

  /** Start the fixture on `runtime` with `spec`; resolves once it listens. */
  static async start(runtime: RuntimeName, spec: FixtureSpec = {}): Promise<RuntimeServer> {
    const full = runtime === "deno-node"
      ? { ...spec, options: { ...spec.options, transport: "node" as const } }
      : spec;
    const { openFiles, ...childSpec } = full;
    const run = await runtimeCommand(runtime, "tests/_fixtures/server_child.ts", [
      JSON.stringify(childSpec),
    ]);
    const { cmd, args } = openFiles === undefined ? run : {
      cmd: "bash",
      args: ["-c", `ulimit -n ${openFiles} && exec "$0" "$@"`, run.cmd, ...run.args],
    };
    const { child, it } = spawnChild(cmd, args);
    for (;;) {
      const next = await it.next();
      if (next.done) {
        await child.stdin.close().catch(() => {});
        throw new Error(`${runtime} fixture exited with ${(await child.status).code} first`);
      }
      const msg = JSON.parse(next.value);
      if (msg.ready) return new RuntimeServer(child, msg, it);
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

  /** The child's resident memory in bytes (Linux), read from outside: no GC, no round trip. */
  rss(): number {
    return rssOf(this.pid);
  }

  /** The child's CPU time so far (user + system), in ms (Linux). */
  cpuMs(): number {
    const fields = Deno.readTextFileSync(`/proc/${this.pid}/stat`).split(") ")[1].split(" ");
    // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }

  /** How many sockets the child has open (Linux). */
  sockets(): number {
    let n = 0;
    for (const e of Deno.readDirSync(`/proc/${this.pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${this.pid}/fd/${e.name}`).startsWith("socket:")) n++;
      } catch { /* closed meanwhile */ }
    }
    return n;
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

/**
 * Run `each` on every runtime of the suite at once, as concurrent steps of `t` named by `name`:
 * for cases that mostly wait (fixed windows, slow readers) and each have a server process of their
 * own. A failed step fails `t`; a runtime `ignore` names is reported ignored.
 */
export async function everyRuntimeAtOnce(
  t: Deno.TestContext,
  name: (runtime: RuntimeName) => string,
  each: (runtime: RuntimeName) => Promise<void>,
  ignore: (runtime: RuntimeName) => boolean = () => false,
): Promise<void> {
  await stepsAtOnce(
    t,
    RUNTIMES.map((runtime) => ({
      name: name(runtime),
      fn: () => each(runtime),
      ignore: ignore(runtime),
    })),
  );
}
