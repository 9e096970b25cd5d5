// The driver's command line: which servers and client counts, how many load
// generator processes, where the reports go, and how long each window runs
// (--smoke and --quick shorten them).

import { ROOT } from "./_paths.ts";
import { TARGETS } from "./_targets.ts";

/** Everything one run is configured by. */
export interface Options {
  smoke: boolean;
  servers: string[];
  clients: number[];
  workers: number;
  /** Where the reports go: a folder, or a `.json` file (a committable result file). */
  out: string;
  /** Interleaved runs: every server once, then every server again, per client count. */
  runs: number;
  /** A free-text note stored in a result file (`--note`). */
  note?: string;
  stallClients: number;
  /** Seconds of the 20 broadcasts/s latency window. */
  latencyS: number;
  /** Seconds of each fixed-rate CPU window, and how many (median taken). */
  cpuS: number;
  cpuReps: number;
  /** Warm re-joins after the main scenarios (median taken): `--join-reps`, default `cpuReps`. */
  joinReps: number;
  /** Frames per second the fixed-rate CPU window aims at (rate = this / clients). */
  cpuFramesPerS: number;
  floodS: number;
  stallBaseS: number;
  stallS: number;
  stormUsers: number;
  idleUsers: number;
  /**
   * Joins of the load generators against a throwaway instance of every
   * server before the first measured run (0: none, `--warmup N`), so that the
   * first server of run 1 does not meet cold generator processes.
   */
  warmupJoins: number;
}

/** Servers of a full run, in table order. */
const ALL = "dback,raw-deno,dback-bun,bun,dback-node,dback-deno-node,node-ws";
/** Servers of a smoke run: dback-bun and dback-node are reported as unavailable when their runtime or packages are missing. */
const SMOKE = "dback,raw-deno,dback-bun,dback-node";

/** The flags a run takes (`--table`, `--report`, `--threads` are read before, by run.ts). */
const FLAGS = [
  "smoke",
  "quick",
  "servers",
  "clients",
  "workers",
  "out",
  "runs",
  "note",
  "stall-clients",
  "cpu-reps",
  "join-reps",
  "storm-users",
  "warmup",
];

/**
 * Parses `--flag value`, `--flag=value`, and the switches --smoke and --quick;
 * an unknown flag (a typo, or `--help` given to this script instead of
 * `deno task bench`) is an error, not a run with the defaults.
 */
export function parseOptions(args: string[]): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (!FLAGS.includes(name)) {
      throw new Error(`unknown option --${name} (\`deno task bench --help\` lists them)`);
    }
    if (eq > 0) flags.set(name, a.slice(eq + 1));
    else if (["smoke", "quick"].includes(name)) flags.set(name, "1");
    else flags.set(name, args[++i] ?? "");
  }
  const smoke = flags.has("smoke");
  const quick = flags.has("quick");
  const list = (k: string, d: string) => (flags.get(k) ?? d).split(",").filter(Boolean);
  const cores = navigator.hardwareConcurrency || 2;
  const o: Options = {
    smoke,
    servers: list("servers", smoke ? SMOKE : ALL),
    clients: list("clients", smoke ? "20" : "100,1000,5000").map(Number),
    workers: Number(flags.get("workers") ?? Math.min(8, Math.max(2, cores - 1))),
    out: flags.get("out") ?? `${ROOT}/out/bench`,
    runs: Number(flags.get("runs") ?? 1),
    note: flags.get("note"),
    stallClients: Number(flags.get("stall-clients") ?? (smoke ? 0 : 1000)),
    latencyS: smoke ? 0.5 : quick ? 2 : 5,
    cpuS: smoke ? 0.5 : quick ? 1.5 : 3,
    cpuReps: Number(flags.get("cpu-reps") ?? (smoke ? 1 : quick ? 1 : 3)),
    joinReps: 0, // set below, from cpuReps
    cpuFramesPerS: 50_000,
    floodS: smoke ? 0.5 : quick ? 1.5 : 4,
    stallBaseS: quick ? 3 : 5,
    stallS: quick ? 10 : 30,
    stormUsers: Number(flags.get("storm-users") ?? 10_000),
    idleUsers: 100,
    warmupJoins: Number(flags.get("warmup") ?? (smoke ? 0 : 2000)),
  };
  for (const s of o.servers) {
    if (!(s in TARGETS)) throw new Error(`unknown server ${s}; known: ${Object.keys(TARGETS)}`);
  }
  if (o.clients.some((n) => !Number.isInteger(n) || n < 1)) throw new Error("bad --clients");
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error("bad --runs");
  if (!Number.isInteger(o.cpuReps) || o.cpuReps < 1) throw new Error("bad --cpu-reps");
  o.joinReps = Number(flags.get("join-reps") ?? o.cpuReps);
  if (!Number.isInteger(o.joinReps) || o.joinReps < 1) throw new Error("bad --join-reps");
  if (!Number.isInteger(o.warmupJoins) || o.warmupJoins < 0) throw new Error("bad --warmup");
  return o;
}
