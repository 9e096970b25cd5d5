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
 * seconds and the load over `wallS` seconds.
 */
export function loadMeter(
  server: number,
  generators: number[],
): (wallS: number) => { serverCpuS: number; load: Load } {
  const box0 = boxJiffies();
  const gen0 = generators.map(cpuSeconds);
  const cpu0 = cpuSeconds(server);
  return (wallS) => {
    const serverCpuS = cpuSeconds(server) - cpu0;
    const genPcts = generators.map((pid, i) => (cpuSeconds(pid) - gen0[i]) / wallS * 100);
    const box1 = boxJiffies();
    const genMaxPct = Math.max(...genPcts);
    const boxPct = (box1.busy - box0.busy) / Math.max(1, box1.total - box0.total) * 100;
    return {
      serverCpuS,
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
