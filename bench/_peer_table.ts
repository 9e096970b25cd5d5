// The main benchmark's results (bench/run.ts `--out FILE.json`) as the Markdown table the docs
// embed between `<!-- peers: FILE [FILE…] -->` and `<!-- /peers -->`: each dback server beside
// the bare peer of its runtime (CPU per delivered frame, KiB per idle joined connection,
// handshake + join rate), one cell per run, and whether each target is met. Several files in one
// marker are several runs. Print it with `deno run -A bench/run.ts --table FILE [FILE…]`.

/** The parts of a `bench/run.ts` row the table shows. */
export interface PeerRow {
  impl: string;
  n: number;
  /** Which interleaved run (`--runs`); a file without it holds one run. */
  run?: number;
  /** The 1-minute load average when this server started. */
  loadAvg1?: number;
  main?: {
    cpuPerFrameUs: number;
    rssPerConnKiB: number;
    join: { joinsPerS: number };
    /** The same join on the warmed-up server (files since 2026-12-05). */
    rejoin?: { joinsPerS: number };
  };
  unavailable?: string;
  error?: string;
}

/** A results file of `bench/run.ts` (the fields the table uses). */
export interface PeerResults {
  date?: string;
  rows: PeerRow[];
}

/** What a dback server is measured against, and the targets (issues 11, 18 and 20). */
export interface PeerTarget {
  peer: string;
  /** CPU per frame ≤ this × the peer's. */
  cpu: number;
  /** KiB per idle joined connection ≤ this × the peer's. */
  mem: number;
  /** Handshakes + joins per second ≥ this × the peer's. */
  joins: number;
}

/** dback servers, their peer and targets, in table order. */
export const PEER_TARGETS: Record<string, PeerTarget> = {
  dback: { peer: "raw-deno", cpu: 1.05, mem: 1.15, joins: 0.9 },
  "dback-bun": { peer: "bun", cpu: 1.05, mem: 2, joins: 0.9 },
  "dback-node": { peer: "node-ws", cpu: 1.1, mem: 1.1, joins: 0.9 },
  "dback-deno-node": { peer: "node-ws", cpu: 1.1, mem: 1.1, joins: 0.9 },
};

/** How the tables name each server. */
export const NAMES: Record<string, string> = {
  dback: "dback on Deno",
  "raw-deno": "bare `Deno.serve`",
  "dback-bun": "dback on Bun",
  bun: "bare `Bun.serve`",
  "dback-node": "dback on Node",
  "dback-deno-node": "dback on Deno, Node transport",
  "node-ws": "bare `ws` on Node",
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

type Metric = "cpu" | "mem" | "joins" | "warm";
const VALUE: Record<Metric, (m: NonNullable<PeerRow["main"]>) => number> = {
  cpu: (m) => m.cpuPerFrameUs,
  mem: (m) => m.rssPerConnKiB,
  joins: (m) => m.join.joinsPerS,
  warm: (m) => m.rejoin?.joinsPerS ?? NaN,
};

/** The table of one or more results files (each file, and each `run` within one, is a run). */
export function peerTable(files: PeerResults[]): string {
  // Runs in order: file by file, then by the rows' run number.
  const runs: PeerRow[][] = [];
  for (const file of files) {
    const ids = [...new Set(file.rows.map((r) => r.run ?? 1))].sort((a, b) => a - b);
    for (const id of ids) runs.push(file.rows.filter((r) => (r.run ?? 1) === id));
  }
  const counts = [...new Set(runs.flat().map((r) => r.n))].sort((a, b) => a - b);
  const present = new Set(runs.flat().map((r) => r.impl));
  // Each peer after the dback servers measured against it.
  const peers = [...new Set(Object.values(PEER_TARGETS).map((t) => t.peer))];
  const order = peers.flatMap((p) => [
    ...Object.keys(PEER_TARGETS).filter((d) => PEER_TARGETS[d].peer === p),
    p,
  ]).filter((impl) => present.has(impl));
  const cell = (xs: string[]) => xs.join(" / ");
  const get = (run: PeerRow[], impl: string, n: number) =>
    run.find((r) => r.impl === impl && r.n === n);
  const lines = [
    `| clients | server | µs CPU/frame | × peer | KiB/idle conn | × peer | joins/s | × peer | warm joins/s | × peer | load avg | targets (median × peer) |`,
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const n of counts) {
    for (const impl of order) {
      // The runs that measured this server (files may hold different servers).
      const mine = runs.filter((run) => get(run, impl, n));
      if (!mine.length) continue;
      const rows = mine.map((run) => get(run, impl, n));
      const target = PEER_TARGETS[impl];
      const peer = target?.peer ?? impl;
      const value = (r: PeerRow | undefined, k: Metric) => r?.main ? VALUE[k](r.main) : NaN;
      const ratios = (k: Metric) =>
        mine.map((run, i) => value(rows[i], k) / value(get(run, peer, n), k));
      const show = (xs: number[], d: number, suffix = "") =>
        cell(xs.map((x) => Number.isFinite(x) ? x.toFixed(d) + suffix : "–"));
      const verdict = (k: Metric, label: string, ok: (x: number) => boolean, limit: string) => {
        const xs = ratios(k).filter(Number.isFinite);
        if (!xs.length) return `${label} ${limit}: –`;
        const m = median(xs);
        return `${label} ${limit}: ${m.toFixed(2)}× ${ok(m) ? "met" : "**missed**"}`;
      };
      // Runs without results say why, in the last cell (the reason itself is in the file).
      const missing = rows.flatMap((r, i) =>
        r && !r.main ? [`run ${i + 1} ${r.unavailable ? "unavailable" : "error"}`] : []
      );
      lines.push(
        `| ${n.toLocaleString("en-US")} | ${NAMES[impl] ?? impl} | ${
          show(rows.map((r) => value(r, "cpu")), 2)
        } | ${show(ratios("cpu"), 2, "×")} | ${show(rows.map((r) => value(r, "mem")), 1)} | ${
          show(ratios("mem"), 2, "×")
        } | ${show(rows.map((r) => value(r, "joins")), 0)} | ${show(ratios("joins"), 2, "×")} | ${
          show(rows.map((r) => value(r, "warm")), 0)
        } | ${show(ratios("warm"), 2, "×")} | ${show(rows.map((r) => r?.loadAvg1 ?? NaN), 1)} | ${
          [
            ...(target
              ? [
                verdict("cpu", "CPU", (x) => x <= target.cpu, `≤ ${target.cpu}`),
                verdict("mem", "mem", (x) => x <= target.mem, `≤ ${target.mem}`),
                verdict("joins", "joins", (x) => x >= target.joins, `≥ ${target.joins}`),
                ...(rows.some((r) => r?.main?.rejoin)
                  ? [verdict("warm", "warm joins", (x) => x >= target.joins, `≥ ${target.joins}`)]
                  : []),
              ]
              : missing.length
              ? []
              : ["peer"]),
            ...missing,
          ].join("; ")
        } |`,
      );
    }
  }
  return lines.join("\n");
}
