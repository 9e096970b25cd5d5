// The servers under test: for each name, the command line that starts it (or
// the reason it cannot run on this machine), its version string, and whether
// the run fails when it does not complete. Every one of them implements the
// control interface of peers/common.mjs.

import { DENO, ROOT } from "./_paths.ts";

/** How to start one server under test. */
export interface Target {
  /** Command line and extra environment, or the reason it cannot run here. */
  command(users: number): { cmd: string[]; env?: Record<string, string> } | { unavailable: string };
  version(): string;
  /** The run fails when this server does not complete every scenario. */
  required: boolean;
}

/** Runs a command and returns its trimmed stdout ("" when it cannot run). */
export function output(cmd: string, args: string[]): string {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : "";
  } catch {
    return "";
  }
}

/** What a results file records of the runtime under test: Bun's or Node's version, else Deno's. */
export function runtimeVersions(
  runtime: "bun" | "node" | "deno",
  bun = "bun",
): Record<string, string> {
  return runtime === "bun"
    ? { bun: output(bun, ["--version"]) }
    : runtime === "node"
    ? { node: output(nodeBinary() ?? "node", ["--version"]) }
    : { deno: Deno.version.deno };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The bun binary: the one the `bun` npm package put into bench/npm (checked
 * for an ELF header: the package ships a placeholder until its postinstall
 * runs), else `bun` on the PATH, else null.
 */
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
      if (magic[0] === 0x7f && magic[1] === 0x45) return p;
    } catch { /* not there */ }
  }
  return output("bun", ["--version"]) ? "bun" : null;
}

/** The bun binary if it runs here, else why not. */
function bun(): string | { unavailable: string } {
  const bin = bunBinary();
  if (!bin) return { unavailable: "bun not found (run bench/bench.sh, or put bun on the PATH)" };
  if (!output(bin, ["--version"])) return { unavailable: `${bin} does not run here` };
  return bin;
}

const bunVersion = () => {
  const bin = bunBinary();
  return bin ? `bun ${output(bin, ["--version"])}` : "bun (unavailable)";
};

/**
 * Where Bun can find zod for dback's core: the repository's own node_modules
 * (a `bun install` at the root) is found by Bun's normal lookup; otherwise the
 * copy bench/bench.sh installs into bench/npm is offered through NODE_PATH,
 * which Bun consults after the normal lookup fails. `--no-install` keeps Bun
 * from fetching a missing package on its own during a measurement.
 */
function bunZod(): { env: Record<string, string> } | { unavailable: string } {
  const benchModules = `${ROOT}/bench/npm/node_modules`;
  if (exists(`${ROOT}/node_modules/zod/package.json`)) return { env: {} };
  if (exists(`${benchModules}/zod/package.json`)) return { env: { NODE_PATH: benchModules } };
  return {
    unavailable: "zod not installed for Bun (run bench/bench.sh, or `bun install` at the root)",
  };
}

let nodeFound: string | null | undefined;

/**
 * A Node.js that runs dback's .ts files (>= 22.18): `node` on the PATH when
 * recent enough, else node@24 from npm's cache (`npx -y node@24`, fetched
 * once). Both Node rows (dback-node and the bare node-ws peer) use it.
 */
export function nodeBinary(): string | null {
  if (nodeFound !== undefined) return nodeFound;
  const recent = (v: string) => {
    const [major, minor] = v.replace(/^v/, "").split(".").map(Number);
    return major > 22 || (major === 22 && minor >= 18);
  };
  const system = output("node", ["--version"]);
  nodeFound = system && recent(system)
    ? "node"
    : output("npx", ["-y", "node@24", "-p", "process.execPath"]) || null;
  return nodeFound;
}

const nodeVersion = () => {
  const bin = nodeBinary();
  return bin ? `node ${output(bin, ["--version"])}` : "node (unavailable)";
};

/** Extra flags for the Deno servers, e.g. BENCH_DENO_FLAGS="--cpu-prof --cpu-prof-dir=out/prof". */
const DENO_FLAGS = (Deno.env.get("BENCH_DENO_FLAGS") ?? "").split(" ").filter(Boolean);
/** The same for the Node servers (dback-node, node-ws): BENCH_NODE_FLAGS="--cpu-prof …". */
const NODE_FLAGS = (Deno.env.get("BENCH_NODE_FLAGS") ?? "").split(" ").filter(Boolean);
/** And for the Bun servers (dback-bun, bun): BENCH_BUN_FLAGS="--cpu-prof --cpu-prof-dir=…". */
const BUN_FLAGS = (Deno.env.get("BENCH_BUN_FLAGS") ?? "").split(" ").filter(Boolean);

const denoServer = (file: string) => (users: number) => ({
  cmd: [
    DENO,
    "run",
    "-A",
    `--config=${ROOT}/deno.json`,
    ...DENO_FLAGS,
    `${ROOT}/${file}`,
    "--users",
    String(users),
  ],
});

const denoVersion = () => `deno ${Deno.version.deno}`;

/** Every server the benchmark knows, by the name `--servers` takes. */
export const TARGETS: Record<string, Target> = {
  "dback": {
    command: denoServer("bench/servers/dback.ts"),
    version: denoVersion,
    required: true,
  },
  "raw-deno": {
    command: denoServer("bench/peers/raw-deno.ts"),
    version: denoVersion,
    required: true,
  },
  "dback-bun": {
    command: (users) => {
      const bin = bun();
      if (typeof bin !== "string") return bin;
      const zod = bunZod();
      if ("unavailable" in zod) return zod;
      return {
        cmd: [
          bin,
          "run",
          "--no-install",
          ...BUN_FLAGS,
          `${ROOT}/bench/servers/dback.ts`,
          "--users",
          String(users),
        ],
        env: zod.env,
      };
    },
    version: bunVersion,
    required: false,
  },
  "bun": {
    command: (users) => {
      const bin = bun();
      if (typeof bin !== "string") return bin;
      return { cmd: [bin, ...BUN_FLAGS, `${ROOT}/bench/peers/bun.ts`, "--users", String(users)] };
    },
    version: bunVersion,
    required: false,
  },
  "node-ws": {
    command: (users) => {
      if (!exists(`${ROOT}/bench/npm/node_modules/ws/package.json`)) {
        return { unavailable: "ws not installed (run bench/bench.sh)" };
      }
      const bin = nodeBinary();
      if (!bin) return { unavailable: "Node.js >= 22.18 not found (nor npx node@24)" };
      return {
        cmd: [bin, ...NODE_FLAGS, `${ROOT}/bench/peers/node-ws.mjs`, "--users", String(users)],
      };
    },
    version: () => {
      let ws = "?";
      try {
        ws = JSON.parse(Deno.readTextFileSync(`${ROOT}/bench/npm/node_modules/ws/package.json`))
          .version;
      } catch { /* not installed */ }
      return `${nodeVersion()} + ws ${ws}`;
    },
    required: false,
  },
  // dback's Node transport (node:http + ws) on Node.js: Node's ESM resolver ignores NODE_PATH,
  // so zod and ws come from the repository's own node_modules (bench.sh installs them).
  "dback-node": {
    command: (users) => {
      const bin = nodeBinary();
      if (!bin) return { unavailable: "Node.js >= 22.18 not found (nor npx node@24)" };
      for (const dep of ["zod", "ws"]) {
        if (!exists(`${ROOT}/node_modules/${dep}/package.json`)) {
          return { unavailable: `${dep} not installed at the root (run bench/bench.sh)` };
        }
      }
      return {
        cmd: [bin, ...NODE_FLAGS, `${ROOT}/bench/servers/dback.ts`, "--users", String(users)],
      };
    },
    version: nodeVersion,
    required: false,
  },
  // The same transport on Deno's node:http (the opt-in `transport: "node"`).
  "dback-deno-node": {
    command: (users) => ({
      ...denoServer("bench/servers/dback.ts")(users),
      env: { DBACK_BENCH_TRANSPORT: "node" },
    }),
    version: denoVersion,
    required: false,
  },
};
