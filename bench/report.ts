// The report of a run: one table per scenario and client count (ratios against
// the raw Deno loop), a table of dback on Bun against its targets, printed as
// text and written as Markdown and JSON to the output folder.

import type { Options } from "./_options.ts";
import type { Load, MachineInfo } from "./_procfs.ts";
import type { MainResult } from "./scenarios/main.ts";
import type { StormResult } from "./scenarios/storm.ts";

/** One server at one client count: its results, or why there are none. */
export interface Row {
  impl: string;
  n: number;
  /** Which of the interleaved runs (`--runs`), from 1. */
  run?: number;
  /** The 1-minute load average when this server started. */
  loadAvg1?: number;
  main?: MainResult;
  storm?: StormResult;
  unavailable?: string;
  error?: string;
}

/** Targets of dback on Bun (issue 11): ≤ 1.15× raw Bun's CPU per frame, ≤ 6 KiB per idle joined connection, ≥ 1.5× dback on Deno's delivered frames/s in the flood. */
export const BUN_TARGETS = { cpuVsBun: 1.15, kibPerConn: 6, floodVsDeno: 1.5 };

/** Targets of dback's Node transport (issue 18): ≤ 1.1× the bare `ws` peer's CPU per frame and KiB per idle joined connection, on Node and on Deno's node:http. */
export const NODE_TARGETS = { cpuVsWs: 1.1, memVsWs: 1.1 };

type Table = { text: string; md: string };

function table(title: string, head: string[], rows: string[][]): Table {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join("  ");
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

/** A number with `d` decimals, "–" when not finite. */
export const f = (x: number, d = 1): string => Number.isFinite(x) ? x.toFixed(d) : "–";

const ratio = (x: number, base: number | undefined) =>
  base === undefined || !Number.isFinite(x) || !Number.isFinite(base) || base === 0
    ? "–"
    : `${(x / base).toFixed(2)}×`;

const loadNote = (l: Load) =>
  `${f(l.serverPct, 0)}/${f(l.genMaxPct, 0)}/${f(l.boxPct, 0)}${
    l.genSaturated ? " GEN-SAT" : l.boxSaturated ? " BOX-SAT" : ""
  }`;

/** A short cell for a row without results; the reason is listed once under the tables. */
const note = (r: Row) => r.unavailable ? "unavailable" : "error";

/** Why each row without (all) results has none, one line a row. */
function reasons(rows: Row[]): Table | null {
  const lines = rows.filter((r) => r.unavailable || r.error).map((r) =>
    `${r.impl} @ ${r.n} clients: ${
      r.unavailable ? `unavailable: ${r.unavailable}` : `error: ${r.error}`
    }`
  );
  if (!lines.length) return null;
  return {
    text: `\nNot measured:\n${lines.map((l) => `  ${l}`).join("\n")}`,
    md: `\n**Not measured**\n\n${lines.map((l) => `- ${l}`).join("\n")}`,
  };
}

/** The cells of a row from its main results, or its note padded to `width` cells. */
const cells = (r: Row, fn: (m: MainResult) => string[], width: number) =>
  r.main ? fn(r.main) : [note(r), ...Array(width - 1).fill("")];

function mainTables(o: Options, n: string, rs: Row[], b: Row | undefined): Table[] {
  const parts = [
    table(
      `[${n}] CPU per delivered frame, fixed rate (${
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
    ),
    table(
      `[${n}] fixed rate 20 broadcasts/s: latency (ms)`,
      ["server", "delivered", "p50", "p99", "max", "p99 × raw", "srv/gen/box %"],
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
    ),
    table(
      `[${n}] flood (broadcasts as fast as the server takes them)`,
      ["server", "delivered frames/s", "× raw", "µs CPU/frame", "× raw", "p99 ms", "srv/gen/box %"],
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
    ),
    table(
      `[${n}] handshake + join (128 at a time, ${o.idleUsers} users), idle memory, join again warm`,
      [
        "server",
        "joined",
        "joins/s",
        "p99 ms",
        "RSS before MiB",
        "after MiB",
        "KiB/conn",
        "× raw",
        "warm joins/s",
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
          f(m.rejoin?.joinsPerS ?? NaN, 0),
        ], 8),
      ]),
    ),
  ];
  return parts;
}

function stormTable(o: Options, n: string, rs: Row[], b: Row | undefined): Table {
  return table(
    `[${n}] join storm: all at once, ${o.stormUsers} users in the map`,
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
  );
}

function stallTable(n: string, rs: Row[]): Table {
  return table(
    `[${n}] one stalled reader (25 broadcasts/s of 8 KiB): others' latency and server memory`,
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
      if (!st) return [r.impl, r.main ? "not run" : note(r), "", "", "", "", ""];
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
        fate + (st.droppedSlowClients !== null ? ` (dropped=${st.droppedSlowClients})` : ""),
      ];
    }),
  );
}

/**
 * dback on Bun against its targets: CPU per frame (fixed rate) and KiB per
 * idle joined connection as ratios of raw Bun, flood delivered frames/s as a
 * ratio of dback on Deno. Rows: dback-bun, bun, dback, as far as they ran.
 */
function bunTable(n: string, rs: Row[]): Table {
  const get = (impl: string) => rs.find((r) => r.impl === impl);
  const bun = get("bun")?.main, deno = get("dback")?.main;
  const t = BUN_TARGETS;
  const verdict = (m: MainResult) => {
    const cpu = bun ? m.cpuPerFrameUs / bun.cpuPerFrameUs : NaN;
    const flood = deno ? m.flood.framesPerS / deno.flood.framesPerS : NaN;
    const says = (x: number, ok: boolean) => Number.isNaN(x) ? "?" : ok ? "met" : "missed";
    return `cpu ${says(cpu, cpu <= t.cpuVsBun)}, mem ${
      says(m.rssPerConnKiB, m.rssPerConnKiB <= t.kibPerConn)
    }, flood ${says(flood, flood >= t.floodVsDeno)}`;
  };
  return table(
    `[${n}] dback on Bun: CPU/frame and KiB/conn vs raw Bun, flood vs dback on Deno`,
    [
      "server",
      "µs CPU/frame",
      `× bun (≤ ${t.cpuVsBun})`,
      `KiB/conn (≤ ${t.kibPerConn})`,
      "× bun",
      "flood frames/s",
      `× dback (≥ ${t.floodVsDeno})`,
      "targets",
    ],
    ["dback-bun", "bun", "dback"].flatMap((impl) => {
      const r = get(impl);
      if (!r) return [];
      return [[
        impl,
        ...cells(r, (m) => [
          f(m.cpuPerFrameUs, 2),
          ratio(m.cpuPerFrameUs, bun?.cpuPerFrameUs),
          f(m.rssPerConnKiB, 1),
          ratio(m.rssPerConnKiB, bun?.rssPerConnKiB),
          f(m.flood.framesPerS, 0),
          ratio(m.flood.framesPerS, deno?.flood.framesPerS),
          impl === "dback-bun" ? verdict(m) : "",
        ], 7),
      ]];
    }),
  );
}

/**
 * dback's Node transport against the bare `ws` peer on the same Node.js: CPU
 * per frame (fixed rate) and KiB per idle joined connection as ratios of
 * node-ws, with the flood for reference. Rows: dback-node, dback-deno-node,
 * node-ws, as far as they ran.
 */
function nodeTable(n: string, rs: Row[]): Table {
  const ws = rs.find((r) => r.impl === "node-ws")?.main;
  const t = NODE_TARGETS;
  const verdict = (m: MainResult) => {
    const cpu = ws ? m.cpuPerFrameUs / ws.cpuPerFrameUs : NaN;
    const mem = ws ? m.rssPerConnKiB / ws.rssPerConnKiB : NaN;
    const says = (x: number, limit: number) =>
      Number.isNaN(x) ? "?" : x <= limit ? "met" : "missed";
    return `cpu ${says(cpu, t.cpuVsWs)}, mem ${says(mem, t.memVsWs)}`;
  };
  return table(
    `[${n}] dback's Node transport: CPU/frame and KiB/conn vs bare node-ws`,
    [
      "server",
      "µs CPU/frame",
      `× ws (≤ ${t.cpuVsWs})`,
      "KiB/conn",
      `× ws (≤ ${t.memVsWs})`,
      "flood frames/s",
      "× ws",
      "targets",
    ],
    ["dback-node", "dback-deno-node", "node-ws"].flatMap((impl) => {
      const r = rs.find((x) => x.impl === impl);
      if (!r) return [];
      return [[
        impl,
        ...cells(r, (m) => [
          f(m.cpuPerFrameUs, 2),
          ratio(m.cpuPerFrameUs, ws?.cpuPerFrameUs),
          f(m.rssPerConnKiB, 1),
          ratio(m.rssPerConnKiB, ws?.rssPerConnKiB),
          f(m.flood.framesPerS, 0),
          ratio(m.flood.framesPerS, ws?.flood.framesPerS),
          impl === "node-ws" ? "" : verdict(m),
        ], 7),
      ]];
    }),
  );
}

/** Every table of a run, as text for the terminal and as Markdown. */
export function render(o: Options, rows: Row[]): Table {
  const parts: Table[] = [];
  const runs = Array.from({ length: o.runs }, (_, i) => i + 1);
  for (const [count, run] of o.clients.flatMap((c) => runs.map((r) => [c, r]))) {
    const rs = rows.filter((r) => r.n === count && (r.run ?? 1) === run);
    const b = rs.find((r) => r.impl === "raw-deno");
    const n = o.runs > 1 ? `${count} clients, run ${run}` : `${count} clients`;
    parts.push(...mainTables(o, n, rs, b), stormTable(o, n, rs, b));
    if (rs.some((r) => r.main?.stall)) parts.push(stallTable(n, rs));
    if (rs.some((r) => r.impl === "dback-bun")) parts.push(bunTable(n, rs));
    if (rs.some((r) => r.impl === "dback-node" || r.impl === "dback-deno-node")) {
      parts.push(nodeTable(n, rs));
    }
  }
  const why = reasons(rows);
  if (why) parts.push(why);
  return { text: parts.map((p) => p.text).join("\n"), md: parts.map((p) => p.md).join("\n") };
}

/** Where and when a run was made, for a result file. */
export interface RunContext {
  /** ISO date of the start. */
  date: string;
  /** The driver's arguments. */
  args: string[];
  /** Load average (1, 5, 15 min) at the start and at the end. */
  loadAverage: { start: number[]; end: number[] };
  /** `git describe`-like: the commit, and whether the tree had changes. */
  commit: string;
}

/**
 * Writes the run. When `o.out` ends in `.json`, one committable result file
 * (date, command, commit, load average, note, machine, options, every row),
 * which `--table` renders for the docs. Otherwise to the folder `o.out`: a
 * time-stamped JSON, and `latest.json` + `latest.md` (`smoke.*` for a smoke
 * run). Returns the file written.
 */
export async function save(
  o: Options,
  info: MachineInfo,
  rows: Row[],
  md: string,
  ctx: RunContext,
): Promise<string> {
  if (o.out.endsWith(".json")) {
    const { note, ...options } = o;
    const file = {
      date: ctx.date,
      command: `deno task bench ${ctx.args.join(" ")}`,
      commit: ctx.commit,
      loadAverage: ctx.loadAverage,
      ...(note ? { note } : {}),
      machine: info,
      options,
      rows,
    };
    await Deno.writeTextFile(o.out, JSON.stringify(file, null, 2) + "\n");
    return o.out;
  }
  await Deno.mkdir(o.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const kind = o.smoke ? "smoke" : "latest";
  const file = `${o.out}/${o.smoke ? "smoke" : "bench"}-${stamp}.json`;
  const json = JSON.stringify({ machine: info, options: o, context: ctx, rows }, null, 2);
  await Deno.writeTextFile(file, json);
  await Deno.writeTextFile(`${o.out}/${kind}.json`, json);
  await Deno.writeTextFile(
    `${o.out}/${kind}.md`,
    `Machine: ${info.nproc} cores, ${info.cpu}, ${info.memGiB} GiB, Linux ${info.kernel}; ` +
      `${
        Object.entries(info.versions).map(([k, v]) => `${k}: ${v}`).join("; ")
      }; generator ${info.generator}.\n` +
      "Load column: server / busiest generator process (% of one core) / whole box (%); " +
      "GEN-SAT = a generator process was saturated, BOX-SAT = every core was busy.\n" +
      md + "\n",
  );
  return file;
}
