// What Linux says about the processes and the machine, read from /proc: CPU
// time and memory of a process, busy time of the whole box, the load over a
// measured window (server / busiest generator / box, with saturation flags) and
// the description of the machine that goes at the top of every report.

const HZ = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux
const GEN_SATURATED = 85; // % of one core: above this a load-generator process is the limit
const BOX_SATURATED = 95; // % of all cores busy

/**
 * CPU time of a process, in seconds: the sum of its threads' schedstat run
 * time (nanoseconds), or utime + stime from /proc/<pid>/stat (1/100 s) when
 * schedstat is not available.
 */
export function cpuSeconds(pid: number): number {
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

/**
 * A process's CPU seconds by kind of thread: the main (JavaScript) thread,
 * split into user and kernel time, the JIT compiler threads, the garbage
 * collector's helper threads, and the rest. Run time comes from each thread's
 * schedstat (nanoseconds); the main thread's user/kernel split from its
 * utime/stime, which the kernel samples at its tick (expect a few ms of
 * granularity per window). A thread that exits during a window takes its time
 * with it.
 */
export interface ThreadSplit {
  mainS: number;
  mainUserS: number;
  mainSysS: number;
  jitS: number;
  gcS: number;
  otherS: number;
}

// JavaScriptCore: "JITWorker"; V8: "V8 DefaultWorke" does both compiling and GC, so it counts as other.
const JIT_THREAD = /JIT|Compil|Maglev|Turbofan/i;
// JavaScriptCore: "HeapHelper", "Heap Collector Thread" (cut to 15 characters by the kernel).
const GC_THREAD = /Heap|ollector|GC/;

/** {@link ThreadSplit} of `pid` now (all zero when /proc cannot tell). */
export function threadSplit(pid: number): ThreadSplit {
  const s: ThreadSplit = { mainS: 0, mainUserS: 0, mainSysS: 0, jitS: 0, gcS: 0, otherS: 0 };
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const dir = `/proc/${pid}/task/${t.name}`;
        const run = Number(Deno.readTextFileSync(`${dir}/schedstat`).split(" ")[0]) / 1e9;
        if (Number(t.name) === pid) {
          const stat = Deno.readTextFileSync(`${dir}/stat`);
          const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          s.mainS += run;
          s.mainUserS += Number(f[11]) / HZ;
          s.mainSysS += Number(f[12]) / HZ;
          continue;
        }
        const comm = Deno.readTextFileSync(`${dir}/comm`).trim();
        if (JIT_THREAD.test(comm)) s.jitS += run;
        else if (GC_THREAD.test(comm)) s.gcS += run;
        else s.otherS += run;
      } catch { /* the thread exited */ }
    }
  } catch { /* no /proc */ }
  return s;
}

/** `b - a`, field by field. */
export function threadDelta(a: ThreadSplit, b: ThreadSplit): ThreadSplit {
  return {
    mainS: b.mainS - a.mainS,
    mainUserS: b.mainUserS - a.mainUserS,
    mainSysS: b.mainSysS - a.mainSysS,
    jitS: b.jitS - a.jitS,
    gcS: b.gcS - a.gcS,
    otherS: b.otherS - a.otherS,
  };
}

/** VmRSS and VmHWM of a process, in KiB. */
export function memory(pid: number): { rss: number; hwm: number } {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? NaN);
    return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat). */
export function boxJiffies(): { busy: number; total: number } {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

/** How busy the server, the load generators and the box were over a window. */
export interface Load {
  /** Server CPU over the window, % of one core. */
  serverPct: number;
  /** The busiest load-generator process, % of one core. */
  genMaxPct: number;
  /** All cores, % busy. */
  boxPct: number;
  genSaturated: boolean;
  boxSaturated: boolean;
}

/**
 * Starts measuring the CPU of `server`, of each generator process and of the
 * box; the returned function ends the window and gives the server's CPU
 * seconds (also by kind of thread) and the load over `wallS` seconds.
 */
export function loadMeter(
  server: number,
  generators: number[],
): (wallS: number) => { serverCpuS: number; threads: ThreadSplit; load: Load } {
  const box0 = boxJiffies();
  const gen0 = generators.map(cpuSeconds);
  const threads0 = threadSplit(server);
  const cpu0 = cpuSeconds(server);
  return (wallS) => {
    const serverCpuS = cpuSeconds(server) - cpu0;
    const threads = threadDelta(threads0, threadSplit(server));
    const genPcts = generators.map((pid, i) => (cpuSeconds(pid) - gen0[i]) / wallS * 100);
    const box1 = boxJiffies();
    const genMaxPct = Math.max(...genPcts);
    const boxPct = (box1.busy - box0.busy) / Math.max(1, box1.total - box0.total) * 100;
    return {
      serverCpuS,
      threads,
      load: {
        serverPct: serverCpuS / wallS * 100,
        genMaxPct,
        boxPct,
        genSaturated: genMaxPct >= GEN_SATURATED,
        boxSaturated: boxPct >= BOX_SATURATED,
      },
    };
  };
}

/** Samples a process's VmRSS every `ms` and keeps the highest value, until stopped. */
export function peakRss(pid: number, ms: number): { peak: () => number; stop: () => void } {
  let peak = memory(pid).rss;
  const timer = setInterval(() => {
    const r = memory(pid).rss;
    if (r > peak) peak = r;
  }, ms);
  return { peak: () => peak, stop: () => clearInterval(timer) };
}

/** The machine a report was measured on. */
export interface MachineInfo {
  nproc: number;
  cpu: string;
  memGiB: number;
  kernel: string;
  versions: Record<string, string>;
  generator: string;
}

/** Cores, CPU model, memory and kernel, with the given versions of the servers and generator. */
export function machineInfo(versions: Record<string, string>, generator: string): MachineInfo {
  let cpuinfo = "";
  try {
    cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  } catch { /* not Linux */ }
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    kernel: Deno.osRelease(),
    versions,
    generator,
  };
}
