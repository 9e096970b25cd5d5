// One server under test and the clients the load generators hold on it: join
// clients, run a measured window (CPU, memory and what the clients received),
// publish at a fixed rate or keep a flood in flight, close everything.

import { type Load, loadMeter, memory, peakRss, type ThreadSplit } from "./_procfs.ts";
import { type Event, type ServerProc, sleep, type WorkerProc } from "./_procs.ts";
import { type Latency, percentiles, pick } from "./_stats.ts";

/** The outcome of one join: how many clients got a `server-join`, how fast, what failed. */
export interface Joined {
  ok: number;
  failed: number;
  wallMs: number;
  joinsPerS: number;
  /** Time from TCP connect to the complete `server-join`, ms. */
  p50: number;
  p99: number;
  max: number;
  errors: Record<string, number>;
}

/** One measured window. */
export interface Measured {
  /** `message` frames the clients received, and how many were sent to them. */
  frames: number;
  expected: number;
  complete: boolean;
  wallS: number;
  /** Delivered frames per second. */
  framesPerS: number;
  serverCpuS: number;
  /**
   * The server's CPU seconds of the window by kind of thread (main thread
   * user/kernel, JIT, GC, other): where a difference between two servers lies.
   */
  serverThreads?: ThreadSplit;
  cpuPerFrameUs: number;
  latency: Latency;
  load: Load;
  rssStartKiB: number;
  rssPeakKiB: number;
  rssEndKiB: number;
}

/** The clients of every load generator on one server. */
export class Session {
  lastSeq = 0;
  constructor(readonly server: ServerProc, readonly workers: WorkerProc[]) {}

  get active(): WorkerProc[] {
    return this.workers.filter((w) => w.clients > 0);
  }

  minDone(): number {
    return Math.min(...this.active.map((w) => w.done));
  }

  /**
   * Joins `n` clients spread over the workers (or all on `only`), at most
   * `concurrency` at a time per worker (0: all at once). A stalled client
   * stops reading after its join and is not counted.
   */
  async join(n: number, concurrency: number, stall = false, only?: WorkerProc): Promise<Joined> {
    const ws = only ? [only] : this.workers;
    const shares = ws.map((_, i) => Math.floor(n / ws.length) + (i < n % ws.length ? 1 : 0));
    const t0 = performance.now();
    const results = await Promise.all(
      ws.map((w, i) =>
        shares[i] === 0 ? Promise.resolve(null) : w.ask(
          { cmd: "join", port: this.server.port, n: shares[i], concurrency, stall },
          "joined",
        )
      ),
    );
    const wallMs = performance.now() - t0;
    const ok = results.reduce((a, r) => a + (r?.ok ?? 0), 0);
    const failed = results.reduce((a, r) => a + (r?.failed ?? 0), 0);
    if (!stall) ws.forEach((w, i) => w.clients += results[i]?.ok ?? 0);
    const lat = results.flatMap((r) => (r?.lat ?? []) as number[]).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const r of results) {
      for (const [k, v] of Object.entries((r?.errors ?? {}) as Record<string, number>)) {
        errors[k] = (errors[k] ?? 0) + v;
      }
    }
    return {
      ok,
      failed,
      wallMs,
      joinsPerS: ok / (wallMs / 1000),
      p50: pick(lat, 0.5),
      p99: pick(lat, 0.99),
      max: lat.length ? lat[lat.length - 1] : NaN,
      errors,
    };
  }

  /** Waits until every counted client has `seq`; false on timeout, a 5 s stall or a dead server. */
  async #until(seq: number, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    let last = this.minDone();
    let lastMove = performance.now();
    while (this.minDone() < seq) {
      const now = performance.now();
      if (now > deadline || now - lastMove > 5000 || this.server.exited) return false;
      await this.#progressOr(100);
      const d = this.minDone();
      if (d !== last) {
        last = d;
        lastMove = performance.now();
      }
    }
    return true;
  }

  #progressOr(ms: number): Promise<void> {
    return Promise.race([Promise.race(this.active.map((w) => w.progress())), sleep(ms)]);
  }

  /** Runs `body` while measuring CPU, memory and what the clients received. */
  async measure(body: () => Promise<{ expected: number; complete: boolean }>): Promise<Measured> {
    await Promise.all(this.active.map((w) => w.ask({ cmd: "reset" }, "reset")));
    const rss0 = memory(this.server.pid).rss;
    const rss = peakRss(this.server.pid, 50);
    const meter = loadMeter(this.server.pid, this.workers.map((w) => w.pid));
    const t0 = performance.now();
    const { expected, complete } = await body();
    const wall = (performance.now() - t0) / 1000;
    const { serverCpuS, threads, load } = meter(wall);
    rss.stop();
    const rss1 = memory(this.server.pid).rss;
    const reports = await Promise.all(this.active.map((w) => w.ask({ cmd: "report" }, "report")));
    const frames = reports.reduce((a, r) => a + r.frames, 0);
    return {
      frames,
      expected,
      complete: complete && frames >= expected,
      wallS: wall,
      framesPerS: frames / wall,
      serverCpuS,
      serverThreads: threads,
      cpuPerFrameUs: frames > 0 ? serverCpuS / frames * 1e6 : NaN,
      latency: percentiles(reports.map((r) => r.hist), Math.max(...reports.map((r) => r.max))),
      load,
      rssStartKiB: rss0,
      rssPeakKiB: Math.max(rss.peak(), rss1),
      rssEndKiB: rss1,
    };
  }

  /** `count` broadcasts at `rate` per second, timed by the server. */
  fixed(count: number, rate: number, pad = 0): Promise<Measured> {
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
  flood(seconds: number, clients: number): Promise<Measured> {
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
            await this.#progressOr(100);
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

  /** Asks one worker to report on its stalled client (close code or "open") after `ms`. */
  drainStalled(worker: WorkerProc, ms: number): Promise<Event> {
    return worker.ask({ cmd: "drain-stalled", ms }, "stalled");
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ask({ cmd: "close-all" }, "closed")));
    for (const w of this.workers) {
      w.clients = 0;
      w.done = 0;
    }
  }
}
