// The benchmark driver: starts each server under test in its own process,
// drives it through the shared control endpoint, spreads the clients over
// several load-generator processes (bench/loadgen/worker.ts), reads CPU and
// memory of every process from /proc, and prints one table per scenario with
// ratios against the raw Deno loop. JSON and Markdown go to out/bench/.
//
//   bash bench/bench.sh                       # full run (what `deno task bench` does)
//   deno run -A bench/run.ts --smoke          # ~5 s end-to-end check, dback and raw-deno only
//   deno run -A bench/run.ts --servers dback,raw-deno --clients 1000
//
// Options: --smoke, --servers a,b, --clients 100,1000,5000, --workers N,
// --out DIR, --stall-clients N (the client count that gets the stalled-reader
// scenario; 0 = none), --quick (shorter windows).

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = Deno.execPath();
const HZ = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux
const GEN_SATURATED = 85; // % of one core: above this a load-generator process is the limit
const BOX_SATURATED = 95; // % of all cores busy

// --- options ---------------------------------------------------------------

interface Options {
  smoke: boolean;
  servers: string[];
  clients: number[];
  workers: number;
  out: string;
  stallClients: number;
  /** Seconds of the 20 broadcasts/s latency window. */
  latencyS: number;
  /** Seconds of each fixed-rate CPU window, and how many (median taken). */
  cpuS: number;
  cpuReps: number;
  /** Frames per second the fixed-rate CPU window aims at (rate = this / clients). */
  cpuFramesPerS: number;
  floodS: number;
  stallBaseS: number;
  stallS: number;
  stormUsers: number;
  idleUsers: number;
}

function parseOptions(args: string[]): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (["smoke", "quick"].includes(a.slice(2))) {
      flags.set(a.slice(2), "1");
    } else flags.set(a.slice(2), args[++i] ?? "");
  }
  const smoke = flags.has("smoke");
  const quick = flags.has("quick");
  const list = (k: string, d: string) => (flags.get(k) ?? d).split(",").filter(Boolean);
  const cores = navigator.hardwareConcurrency || 2;
  const o: Options = {
    smoke,
    servers: list(
      "servers",
      smoke ? "dback,raw-deno" : "dback,raw-deno,bun,node-ws",
    ),
    clients: list("clients", smoke ? "20" : "100,1000,5000").map(Number),
    workers: Number(
      flags.get("workers") ?? Math.min(8, Math.max(2, cores - 1)),
    ),
    out: flags.get("out") ?? `${ROOT}/out/bench`,
    stallClients: Number(flags.get("stall-clients") ?? (smoke ? 0 : 1000)),
    latencyS: smoke ? 0.5 : quick ? 2 : 5,
    cpuS: smoke ? 0.5 : quick ? 1.5 : 3,
    cpuReps: smoke ? 1 : quick ? 1 : 3,
    cpuFramesPerS: 50_000,
    floodS: smoke ? 0.5 : quick ? 1.5 : 4,
    stallBaseS: quick ? 3 : 5,
    stallS: quick ? 10 : 30,
    stormUsers: Number(flags.get("storm-users") ?? 10_000),
    idleUsers: 100,
  };
  for (const s of o.servers) {
    if (!(s in IMPLS)) {
      throw new Error(`unknown server ${s}; known: ${Object.keys(IMPLS)}`);
    }
  }
  if (o.clients.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new Error("bad --clients");
  }
  return o;
}

// --- servers under test ----------------------------------------------------

function bunBinary(): string | null {
  for (
    const p of [
      `${ROOT}/bench/npm/node_modules/bun/bin/bun.exe`,
      `${ROOT}/bench/npm/node_modules/@oven/bun-linux-x64/bin/bun`,
      `${ROOT}/bench/npm/node_modules/@oven/bun-linux-x64-baseline/bin/bun`,
    ]
  ) {
    try {
      const f = Deno.openSync(p);
      const magic = new Uint8Array(4);
      f.readSync(magic);
      f.close();
      if (magic[0] === 0x7f && magic[1] === 0x45) return p; // ELF, not the placeholder
    } catch { /* not there */ }
  }
  return null;
}

interface Impl {
  /** Command line, or the reason it cannot run here. */
  command(users: number): string[] | { unavailable: string };
  version(): string;
}

function run(cmd: string, args: string[]): string {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" })
      .outputSync();
    return new TextDecoder().decode(r.stdout).trim();
  } catch {
    return "";
  }
}

/** Extra flags for the Deno servers, e.g. BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=out/prof". */
const DENO_FLAGS = (Deno.env.get("BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean);

const denoServer = (file: string) => (users: number) => [
  DENO,
  "run",
  "-A",
  `--config=${ROOT}/deno.json`,
  ...DENO_FLAGS,
  `${ROOT}/${file}`,
  "--users",
  String(users),
];

const IMPLS: Record<string, Impl> = {
  "dback": {
    command: denoServer("bench/servers/dback.ts"),
    version: () => `deno ${Deno.version.deno}`,
  },
  "raw-deno": {
    command: denoServer("bench/peers/raw-deno.ts"),
    version: () => `deno ${Deno.version.deno}`,
  },
  "bun": {
    command: (u) => {
      const bin = bunBinary();
      if (!bin) {
        return { unavailable: "bun binary not installed (run bench/bench.sh)" };
      }
      if (!run(bin, ["--version"])) {
        return { unavailable: `${bin} does not run here` };
      }
      return [bin, `${ROOT}/bench/peers/bun.ts`, "--users", String(u)];
    },
    version: () => {
      const bin = bunBinary();
      return bin ? `bun ${run(bin, ["--version"])}` : "bun (unavailable)";
    },
  },
  "node-ws": {
    command: (u) => {
      try {
        Deno.statSync(`${ROOT}/bench/npm/node_modules/ws/package.json`);
      } catch {
        return { unavailable: "ws not installed (run bench/bench.sh)" };
      }
      if (!run("node", ["--version"])) return { unavailable: "node not found" };
      return ["node", `${ROOT}/bench/peers/node-ws.mjs`, "--users", String(u)];
    },
    version: () => {
      let ws = "?";
      try {
        ws = JSON.parse(
          Deno.readTextFileSync(`${ROOT}/bench/npm/node_modules/ws/package.json`),
        )
          .version;
      } catch { /* not installed */ }
      return `node ${run("node", ["--version"])} + ws ${ws}`;
    },
  },
};

// --- /proc ----------------------------------------------------------------

/**
 * CPU time of a process, in seconds: the sum of its threads' schedstat run
 * time (nanoseconds), or utime + stime from /proc/<pid>/stat (1/100 s) when
 * schedstat is not available.
 */
function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ")[0]);
      } catch { /* thread exited */ }
    }
    if (ns > 0) return ns / 1e9;
  } catch { /* no schedstat */ }
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / HZ; // fields 14 and 15
  } catch {
    return NaN;
  }
}

/** VmRSS and VmHWM of a process, in KiB. */
function memory(pid: number): { rss: number; hwm: number } {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
    return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Busy and total jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(
    /\s+/,
  ).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

// --- processes -------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Yields the lines of a byte stream; keeps reading so the pipe never fills. */
async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
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

class ServerProc {
  readonly tail: string[] = [];
  exited = false;
  constructor(
    readonly name: string,
    readonly child: Deno.ChildProcess,
    readonly port: number,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  static async start(
    name: string,
    users: number,
  ): Promise<ServerProc | { unavailable: string }> {
    const cmd = IMPLS[name].command(users);
    if (!Array.isArray(cmd)) return cmd;
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const tail: string[] = [];
    const keep = (l: string) => {
      tail.push(l);
      if (tail.length > 40) tail.shift();
    };
    (async () => {
      for await (const l of lines(child.stderr)) keep(l);
    })();
    const out = lines(child.stdout);
    const ready = (async () => {
      for await (const l of out) {
        keep(l);
        const m = /^READY (\d+)/.exec(l);
        if (m) return Number(m[1]);
      }
      return 0;
    })();
    const port = await Promise.race([ready, sleep(30_000).then(() => 0)]);
    if (!port) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      return { unavailable: `did not start: ${tail.slice(-5).join(" | ")}` };
    }
    const proc = new ServerProc(name, child, port);
    proc.tail.push(...tail);
    (async () => {
      for await (const l of out) {
        proc.tail.push(l);
        if (proc.tail.length > 40) proc.tail.shift();
      }
    })();
    child.status.then(() => proc.exited = true);
    return proc;
  }

  async publish(
    count: number,
    rate: number,
    pad = 0,
  ): Promise<{ first: number; last: number }> {
    const r = await fetch(
      `http://127.0.0.1:${this.port}/publish/${count}/${rate}/${pad}`,
    );
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

// deno-lint-ignore no-explicit-any
type Event = Record<string, any>;

class WorkerProc {
  done = 0;
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
    return this.#writer.write(
      new TextEncoder().encode(JSON.stringify(cmd) + "\n"),
    );
  }

  next(ev: string, ms = 120_000): Promise<Event> {
    const q = this.#queues.get(ev);
    if (q?.length) return Promise.resolve(q.shift()!);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`worker: no ${ev} within ${ms} ms`)),
        ms,
      );
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

// --- measurements ------------------------------------------------------------

const LN_STEP = Math.log(1.01);

interface Latency {
  p50: number;
  p99: number;
  max: number;
}

/** Percentiles (ms) from merged 1 %-wide histograms of µs. */
function percentiles(hists: Record<string, number>[], maxUs: number): Latency {
  const merged = new Map<number, number>();
  let total = 0;
  for (const h of hists) {
    for (const [k, v] of Object.entries(h)) {
      merged.set(Number(k), (merged.get(Number(k)) ?? 0) + v);
      total += v;
    }
  }
  const keys = [...merged.keys()].sort((a, b) => a - b);
  const at = (p: number) => {
    if (total === 0) return NaN;
    let seen = 0;
    for (const k of keys) {
      seen += merged.get(k)!;
      if (seen >= p * total) return Math.exp((k + 0.5) * LN_STEP) / 1000;
    }
    return maxUs / 1000;
  };
  return { p50: at(0.5), p99: at(0.99), max: maxUs / 1000 };
}

interface Load {
  /** Server CPU over the window, % of one core. */
  serverPct: number;
  /** The busiest load-generator process, % of one core. */
  genMaxPct: number;
  /** All cores, % busy. */
  boxPct: number;
  genSaturated: boolean;
  boxSaturated: boolean;
}

class Session {
  lastSeq = 0;
  constructor(
    readonly server: ServerProc,
    readonly workers: WorkerProc[],
  ) {}

  get active(): WorkerProc[] {
    return this.workers.filter((w) => w.clients > 0);
  }

  minDone(): number {
    return Math.min(...this.active.map((w) => w.done));
  }

  async join(n: number, concurrency: number, stall = false, only?: WorkerProc) {
    const ws = only ? [only] : this.workers;
    const shares = ws.map((_, i) => Math.floor(n / ws.length) + (i < n % ws.length ? 1 : 0));
    const t0 = performance.now();
    const results = await Promise.all(
      ws.map((w, i) =>
        shares[i] === 0 ? Promise.resolve(null) : w.ask({
          cmd: "join",
          port: this.server.port,
          n: shares[i],
          concurrency,
          stall,
        }, "joined")
      ),
    );
    const wallMs = performance.now() - t0;
    const ok = results.reduce((a, r) => a + (r?.ok ?? 0), 0);
    const failed = results.reduce((a, r) => a + (r?.failed ?? 0), 0);
    if (!stall) ws.forEach((w, i) => w.clients += results[i]?.ok ?? 0);
    const lat = results.flatMap((r) => (r?.lat ?? []) as number[]).sort((
      a,
      b,
    ) => a - b);
    const errors: Record<string, number> = {};
    for (const r of results) {
      for (
        const [k, v] of Object.entries(
          (r?.errors ?? {}) as Record<string, number>,
        )
      ) {
        errors[k] = (errors[k] ?? 0) + v;
      }
    }
    const pct = (p: number) =>
      lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN;
    return {
      ok,
      failed,
      wallMs,
      joinsPerS: ok / (wallMs / 1000),
      p50: pct(0.5),
      p99: pct(0.99),
      max: lat.length ? lat[lat.length - 1] : NaN,
      errors,
    };
  }

  async #until(seq: number, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    let last = this.minDone();
    let lastMove = performance.now();
    while (this.minDone() < seq) {
      const now = performance.now();
      if (now > deadline || now - lastMove > 5000 || this.server.exited) {
        return false;
      }
      await Promise.race([
        Promise.race(this.active.map((w) => w.progress())),
        sleep(100),
      ]);
      const d = this.minDone();
      if (d !== last) {
        last = d;
        lastMove = performance.now();
      }
    }
    return true;
  }

  /** Run `body` while measuring CPU, memory and what the clients received. */
  async measure(body: () => Promise<{ expected: number; complete: boolean }>) {
    await Promise.all(this.active.map((w) => w.ask({ cmd: "reset" }, "reset")));
    const pids = this.workers.map((w) => w.pid);
    const m0 = memory(this.server.pid);
    let peak = m0.rss;
    const sampler = setInterval(() => {
      const r = memory(this.server.pid).rss;
      if (r > peak) peak = r;
    }, 50);
    const box0 = machine();
    const gen0 = pids.map(cpuSeconds);
    const cpu0 = cpuSeconds(this.server.pid);
    const t0 = performance.now();
    const { expected, complete } = await body();
    const t1 = performance.now();
    const cpu1 = cpuSeconds(this.server.pid);
    const gen1 = pids.map(cpuSeconds);
    const box1 = machine();
    clearInterval(sampler);
    const m1 = memory(this.server.pid);
    const reports = await Promise.all(
      this.active.map((w) => w.ask({ cmd: "report" }, "report")),
    );
    const wall = (t1 - t0) / 1000;
    const frames = reports.reduce((a, r) => a + r.frames, 0);
    const serverCpu = cpu1 - cpu0;
    const genPcts = gen1.map((g, i) => (g - gen0[i]) / wall * 100);
    const load: Load = {
      serverPct: serverCpu / wall * 100,
      genMaxPct: Math.max(...genPcts),
      boxPct: (box1.busy - box0.busy) / Math.max(1, box1.total - box0.total) *
        100,
      genSaturated: false,
      boxSaturated: false,
    };
    load.genSaturated = load.genMaxPct >= GEN_SATURATED;
    load.boxSaturated = load.boxPct >= BOX_SATURATED;
    return {
      frames,
      expected,
      complete: complete && frames >= expected,
      wallS: wall,
      framesPerS: frames / wall,
      serverCpuS: serverCpu,
      cpuPerFrameUs: frames > 0 ? serverCpu / frames * 1e6 : NaN,
      latency: percentiles(
        reports.map((r) => r.hist),
        Math.max(...reports.map((r) => r.max)),
      ),
      load,
      rssStartKiB: m0.rss,
      rssPeakKiB: Math.max(peak, m1.rss),
      rssEndKiB: m1.rss,
    };
  }

  /** `count` broadcasts at `rate` per second, timed by the server. */
  fixed(count: number, rate: number, pad = 0) {
    return this.measure(async () => {
      const counted = this.active.reduce((a, w) => a + w.clients, 0);
      const r = await this.server.publish(count, rate, pad);
      this.lastSeq = r.last;
      const complete = await this.#until(r.last, count / rate * 1000 + 10_000);
      return { expected: count * counted, complete };
    });
  }

  /**
   * Broadcasts as fast as the server takes them: a window of broadcasts is
   * kept in flight (published but not yet received by every client), large
   * enough to keep the server busy and small enough that no client's backlog
   * nears a slow-client limit.
   */
  flood(seconds: number, clients: number) {
    const window = Math.max(4, Math.min(512, Math.ceil(20_000 / clients)));
    return this.measure(async () => {
      const counted = this.active.reduce((a, w) => a + w.clients, 0);
      const start = this.lastSeq;
      let published = this.lastSeq;
      const t0 = performance.now();
      let complete = true;
      while (performance.now() - t0 < seconds * 1000) {
        const inflight = published - this.minDone();
        if (inflight <= window / 2) {
          const r = await this.server.publish(window - inflight, 0);
          published = this.lastSeq = r.last;
        } else {
          const before = this.minDone();
          const stuckAt = performance.now() + 5000;
          while (this.minDone() === before && performance.now() < stuckAt && !this.server.exited) {
            await Promise.race([Promise.race(this.active.map((w) => w.progress())), sleep(100)]);
          }
          if (this.minDone() === before) {
            complete = false;
            break;
          }
        }
      }
      complete = (await this.#until(published, 10_000)) && complete;
      return { expected: (published - start) * counted, complete };
    });
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      this.workers.map((w) => w.ask({ cmd: "close-all" }, "closed")),
    );
    for (const w of this.workers) {
      w.clients = 0;
      w.done = 0;
    }
  }
}

// --- scenarios -------------------------------------------------------------

type Measured = Awaited<ReturnType<Session["measure"]>>;
type Joined = Awaited<ReturnType<Session["join"]>>;

interface MainResult {
  join: Joined;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssPerConnKiB: number;
  latency: Measured;
  cpu: Measured[];
  cpuPerFrameUs: number;
  cpuRate: number;
  flood: Measured;
  stall?: {
    baseline: Measured;
    stalled: Measured;
    stalledJoined: boolean;
    drain: Event;
    droppedSlowClients: number | null;
    droppedAfterS: number | null;
  };
}

interface StormResult {
  users: number;
  join: Joined;
  rssBeforeKiB: number;
  rssPeakKiB: number;
  rssAfterKiB: number;
  load: Load;
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

async function droppedSlowClients(port: number): Promise<number | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await r.text();
    const m = /^dback_dropped_slow_clients_total (\d+)/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function mainScenarios(
  o: Options,
  server: ServerProc,
  workers: WorkerProc[],
  n: number,
): Promise<MainResult> {
  const s = new Session(server, workers);
  try {
    await sleep(o.smoke ? 100 : 500);
    const before = memory(server.pid).rss;
    const join = await s.join(n, 128);
    if (join.ok === 0) {
      throw new Error(`no client could join: ${JSON.stringify(join.errors)}`);
    }
    await sleep(o.smoke ? 100 : 1000);
    const after = memory(server.pid).rss;
    const latency = await s.fixed(Math.round(20 * o.latencyS), 20);
    const cpuRate = Math.max(
      1,
      Math.min(1000, Math.round(o.cpuFramesPerS / n)),
    );
    const cpu: Measured[] = [];
    for (let i = 0; i < o.cpuReps; i++) {
      cpu.push(
        await s.fixed(Math.max(1, Math.round(cpuRate * o.cpuS)), cpuRate),
      );
    }
    const flood = await s.flood(o.floodS, n);
    const result: MainResult = {
      join,
      rssBeforeKiB: before,
      rssAfterKiB: after,
      rssPerConnKiB: (after - before) / join.ok,
      latency,
      cpu,
      cpuPerFrameUs: median(cpu.map((c) => c.cpuPerFrameUs)),
      cpuRate,
      flood,
    };
    if (n === o.stallClients) {
      const rate = 25, pad = 8192;
      const baseline = await s.fixed(rate * o.stallBaseS, rate, pad);
      const sj = await s.join(1, 1, true, workers[0]);
      const stalledAt = performance.now();
      let droppedAfterS: number | null = null;
      let polling = true;
      const poll = (async () => {
        while (polling && droppedAfterS === null) {
          await sleep(500);
          const d = await droppedSlowClients(server.port);
          if (d === null) return; // not dback: no /metrics
          if (d > 0) droppedAfterS = (performance.now() - stalledAt) / 1000;
        }
      })();
      const stalled = await s.fixed(rate * o.stallS, rate, pad);
      polling = false;
      await poll;
      const drain = await workers[0].ask(
        { cmd: "drain-stalled", ms: 3000 },
        "stalled",
      );
      result.stall = {
        baseline,
        stalled,
        stalledJoined: sj.ok === 1,
        drain,
        droppedSlowClients: await droppedSlowClients(server.port),
        droppedAfterS,
      };
    }
    return result;
  } finally {
    await s.closeAll();
  }
}

async function stormScenario(
  o: Options,
  server: ServerProc,
  workers: WorkerProc[],
  n: number,
): Promise<StormResult> {
  const s = new Session(server, workers);
  try {
    await sleep(o.smoke ? 100 : 500);
    const m0 = memory(server.pid);
    let peak = m0.rss;
    const sampler = setInterval(() => {
      const r = memory(server.pid).rss;
      if (r > peak) peak = r;
    }, 25);
    const box0 = machine();
    const gen0 = workers.map((w) => cpuSeconds(w.pid));
    const cpu0 = cpuSeconds(server.pid);
    const join = await s.join(n, 0); // every client at once
    const wall = join.wallMs / 1000;
    const genPcts = workers.map((w, i) => (cpuSeconds(w.pid) - gen0[i]) / wall * 100);
    const box1 = machine();
    const load: Load = {
      serverPct: (cpuSeconds(server.pid) - cpu0) / wall * 100,
      genMaxPct: Math.max(...genPcts),
      boxPct: (box1.busy - box0.busy) / Math.max(1, box1.total - box0.total) * 100,
      genSaturated: false,
      boxSaturated: false,
    };
    load.genSaturated = load.genMaxPct >= GEN_SATURATED;
    load.boxSaturated = load.boxPct >= BOX_SATURATED;
    clearInterval(sampler);
    const m1 = memory(server.pid);
    return {
      users: o.stormUsers,
      join,
      rssBeforeKiB: m0.rss,
      rssPeakKiB: Math.max(peak, m1.hwm, m1.rss),
      rssAfterKiB: m1.rss,
      load,
    };
  } finally {
    await s.closeAll();
  }
}

// --- output ----------------------------------------------------------------

function table(
  title: string,
  head: string[],
  rows: string[][],
): { text: string; md: string } {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(
      "  ",
    );
  const text = [
    `\n${title}`,
    line(head),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
  ].join("\n");
  const md = [
    `\n**${title}**\n`,
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => i === 0 ? "---" : "---:").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
  return { text, md };
}

const f = (x: number, d = 1) => Number.isFinite(x) ? x.toFixed(d) : "–";
const ratio = (x: number, base: number | undefined, lowerIsBetter = true) =>
  base === undefined || !Number.isFinite(x) || !Number.isFinite(base) ||
    base === 0
    ? "–"
    : `${(x / base).toFixed(2)}×${lowerIsBetter ? "" : ""}`;
const loadNote = (l: Load) =>
  `${f(l.serverPct, 0)}/${f(l.genMaxPct, 0)}/${f(l.boxPct, 0)}${
    l.genSaturated ? " GEN-SAT" : l.boxSaturated ? " BOX-SAT" : ""
  }`;

interface Row {
  impl: string;
  n: number;
  main?: MainResult;
  storm?: StormResult;
  unavailable?: string;
  error?: string;
}

function render(o: Options, rows: Row[]): { text: string; md: string } {
  const parts: Array<{ text: string; md: string }> = [];
  const base = (n: number) => rows.find((r) => r.n === n && r.impl === "raw-deno");
  const note = (r: Row) => r.unavailable ? `unavailable: ${r.unavailable}` : `error: ${r.error}`;
  for (const n of o.clients) {
    const rs = rows.filter((r) => r.n === n);
    const b = base(n);
    const cells = (r: Row, fn: (m: MainResult) => string[], width: number) =>
      r.main ? fn(r.main) : [note(r), ...Array(width - 1).fill("")];
    parts.push(table(
      `[${n} clients] CPU per delivered frame, fixed rate (${
        rs.find((r) => r.main)?.main?.cpuRate ?? "?"
      } broadcasts/s, median of ${o.cpuReps})`,
      ["server", "frames", "µs CPU/frame", "× raw", "srv/gen/box %"],
      rs.map((r) => [
        r.impl,
        ...cells(r, (m) => [
          String(m.cpu.reduce((a, c) => a + c.frames, 0)),
          f(m.cpuPerFrameUs, 2),
          ratio(m.cpuPerFrameUs, b?.main?.cpuPerFrameUs),
          loadNote(m.cpu[Math.floor(m.cpu.length / 2)].load),
        ], 4),
      ]),
    ));
    parts.push(table(
      `[${n} clients] fixed rate 20 broadcasts/s: latency (ms)`,
      [
        "server",
        "delivered",
        "p50",
        "p99",
        "max",
        "p99 × raw",
        "srv/gen/box %",
      ],
      rs.map((r) => [
        r.impl,
        ...cells(r, (m) => [
          `${m.latency.frames}/${m.latency.expected}`,
          f(m.latency.latency.p50, 2),
          f(m.latency.latency.p99, 2),
          f(m.latency.latency.max, 2),
          ratio(m.latency.latency.p99, b?.main?.latency.latency.p99),
          loadNote(m.latency.load),
        ], 6),
      ]),
    ));
    parts.push(table(
      `[${n} clients] flood (broadcasts as fast as the server takes them)`,
      [
        "server",
        "frames/s",
        "× raw",
        "µs CPU/frame",
        "× raw",
        "p99 ms",
        "srv/gen/box %",
      ],
      rs.map((r) => [
        r.impl,
        ...cells(r, (m) => [
          f(m.flood.framesPerS, 0),
          ratio(m.flood.framesPerS, b?.main?.flood.framesPerS),
          f(m.flood.cpuPerFrameUs, 2),
          ratio(m.flood.cpuPerFrameUs, b?.main?.flood.cpuPerFrameUs),
          f(m.flood.latency.p99, 1),
          loadNote(m.flood.load) + (m.flood.complete ? "" : " INCOMPLETE"),
        ], 6),
      ]),
    ));
    parts.push(table(
      `[${n} clients] handshake + join (128 at a time, ${o.idleUsers} users) and idle memory`,
      [
        "server",
        "joined",
        "joins/s",
        "p99 ms",
        "RSS before MiB",
        "after MiB",
        "KiB/conn",
        "× raw",
      ],
      rs.map((r) => [
        r.impl,
        ...cells(r, (m) => [
          `${m.join.ok}/${m.join.ok + m.join.failed}`,
          f(m.join.joinsPerS, 0),
          f(m.join.p99, 1),
          f(m.rssBeforeKiB / 1024, 1),
          f(m.rssAfterKiB / 1024, 1),
          f(m.rssPerConnKiB, 1),
          ratio(m.rssPerConnKiB, b?.main?.rssPerConnKiB),
        ], 7),
      ]),
    ));
    parts.push(table(
      `[${n} clients] join storm: all at once, ${o.stormUsers} users in the map`,
      [
        "server",
        "joined",
        "joins/s",
        "× raw",
        "p50 ms",
        "p99 ms",
        "max ms",
        "RSS peak MiB",
        "srv/gen/box %",
      ],
      rs.map((r) => [
        r.impl,
        ...(r.storm
          ? [
            `${r.storm.join.ok}/${r.storm.join.ok + r.storm.join.failed}`,
            f(r.storm.join.joinsPerS, 0),
            ratio(r.storm.join.joinsPerS, b?.storm?.join.joinsPerS),
            f(r.storm.join.p50, 0),
            f(r.storm.join.p99, 0),
            f(r.storm.join.max, 0),
            f(r.storm.rssPeakKiB / 1024, 0),
            loadNote(r.storm.load),
          ]
          : [note(r), "", "", "", "", "", "", ""]),
      ]),
    ));
    if (rs.some((r) => r.main?.stall)) {
      parts.push(table(
        `[${n} clients] one stalled reader (25 broadcasts/s of 8 KiB): others' latency and server memory`,
        [
          "server",
          "p99 before",
          "p99 stalled",
          "max stalled",
          "RSS before MiB",
          "RSS peak MiB",
          "stalled client",
        ],
        rs.map((r) => {
          const st = r.main?.stall;
          if (!st) {
            return [r.impl, r.main ? "not run" : note(r), "", "", "", "", ""];
          }
          const code = st.drain.closeCodes?.[0];
          const fate = typeof code === "number"
            ? `closed ${code}`
            : code === "open"
            ? "still open"
            : String(code);
          return [
            r.impl,
            f(st.baseline.latency.p99, 2),
            f(st.stalled.latency.p99, 2),
            f(st.stalled.latency.max, 1),
            f(st.baseline.rssEndKiB / 1024, 1),
            f(st.stalled.rssPeakKiB / 1024, 1),
            fate +
            (st.droppedSlowClients !== null ? ` (dropped=${st.droppedSlowClients})` : ""),
          ];
        }),
      ));
    }
  }
  return {
    text: parts.map((p) => p.text).join("\n"),
    md: parts.map((p) => p.md).join("\n"),
  };
}

// --- main -------------------------------------------------------------------

function machineInfo(o: Options) {
  const cpuinfo = (() => {
    try {
      return Deno.readTextFileSync("/proc/cpuinfo");
    } catch {
      return "";
    }
  })();
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    kernel: Deno.osRelease(),
    versions: Object.fromEntries(o.servers.map((s) => [s, IMPLS[s].version()])),
    generator: `${o.workers} × deno ${Deno.version.deno} (raw TCP WebSocket clients)`,
  };
}

async function main(): Promise<number> {
  const o = parseOptions(Deno.args);
  const started = performance.now();
  const info = machineInfo(o);
  console.log(
    `dback benchmark${o.smoke ? " (smoke)" : ""}: ${info.nproc} cores, ${info.cpu}; ` +
      `servers ${o.servers.join(", ")}; clients ${
        o.clients.join(", ")
      }; ${o.workers} generator processes`,
  );
  console.log(
    "load column: server / busiest generator process (% of one core) / whole box (%)",
  );
  const workers = Array.from({ length: o.workers }, () => new WorkerProc());
  await Promise.all(workers.map((w) => w.next("ready", 30_000)));
  const rows: Row[] = [];
  let failed = false;
  try {
    for (const n of o.clients) {
      for (const impl of o.servers) {
        const row: Row = { impl, n };
        rows.push(row);
        const t = performance.now();
        try {
          const srv = await ServerProc.start(impl, o.idleUsers);
          if ("unavailable" in srv) {
            row.unavailable = srv.unavailable;
          } else {
            try {
              row.main = await mainScenarios(o, srv, workers, n);
            } finally {
              await srv.stop();
            }
            const storm = await ServerProc.start(impl, o.stormUsers);
            if ("unavailable" in storm) {
              row.error = `storm server: ${storm.unavailable}`;
            } else {
              try {
                row.storm = await stormScenario(o, storm, workers, n);
              } finally {
                await storm.stop();
              }
            }
          }
        } catch (err) {
          row.error = err instanceof Error ? err.message : String(err);
        }
        const m = row.main;
        console.log(
          `  ${impl} @ ${n}: ${
            row.unavailable
              ? `unavailable (${row.unavailable})`
              : row.error
              ? `ERROR ${row.error}`
              : `${f(m?.cpuPerFrameUs ?? NaN, 2)} µs/frame, p99 ${
                f(m?.latency.latency.p99 ?? NaN, 2)
              } ms, flood ${f(m?.flood.framesPerS ?? NaN, 0)} frames/s, storm p99 ${
                f(row.storm?.join.p99 ?? NaN, 0)
              } ms`
          } (${f((performance.now() - t) / 1000, 1)} s)`,
        );
        const mustWork = impl === "dback" || impl === "raw-deno";
        if (mustWork && (row.error || row.unavailable)) failed = true;
        if (mustWork && m && (m.latency.frames === 0 || m.flood.frames === 0)) {
          failed = true;
        }
      }
    }
  } finally {
    await Promise.all(workers.map((w) => w.exit()));
  }
  const { text, md } = render(o, rows);
  console.log(text);
  await Deno.mkdir(o.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const name = `${o.smoke ? "smoke" : "bench"}-${stamp}`;
  const json = JSON.stringify({ machine: info, options: o, rows }, null, 2);
  await Deno.writeTextFile(`${o.out}/${name}.json`, json);
  await Deno.writeTextFile(
    `${o.out}/${o.smoke ? "smoke" : "latest"}.json`,
    json,
  );
  await Deno.writeTextFile(
    `${o.out}/${o.smoke ? "smoke" : "latest"}.md`,
    `Machine: ${info.nproc} cores, ${info.cpu}, ${info.memGiB} GiB, Linux ${info.kernel}; ` +
      `${Object.values(info.versions).join("; ")}; generator ${info.generator}.\n` +
      "Load column: server / busiest generator process (% of one core) / whole box (%); " +
      "GEN-SAT = a generator process was saturated, BOX-SAT = every core was busy.\n" +
      md + "\n",
  );
  console.log(
    `\nsaved ${o.out}/${name}.json (${f((performance.now() - started) / 1000, 1)} s total)`,
  );
  const dback = rows.filter((r) => r.impl === "dback");
  const dbackFrames = dback.reduce(
    (a, r) => a + (r.main ? r.main.latency.frames + r.main.flood.frames : 0),
    0,
  );
  console.log(`dback delivered frames: ${dbackFrames}`);
  if (failed) {
    console.log("FAILED: dback or raw-deno did not complete every scenario");
  }
  return failed ? 1 : 0;
}

Deno.exit(await main());
