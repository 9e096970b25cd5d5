// Runs a server under test (its file is the first argument; the rest are its own arguments) and
// answers `snap` lines on stdin with `SNAP {"rss":…,"heapUsed":…,"heapTotal":…}` on stdout, taken
// after two full collections: how bench/conn_memory.ts measures a server from inside without
// changing the server's own file. `heap FILE` writes a V8 heap snapshot (Deno, Node) and answers
// `HEAP FILE` (on Bun in JSC's format): to count what each connection holds, diff one before and
// one after the joins.
// `sample` starts V8's sampling heap profiler (garbage included) and `sample FILE` writes what it
// saw since (a `.heapprofile`) and answers `SAMPLE FILE`: what each upgrade and join allocates. Runtime-neutral (Deno with --v8-flags=--expose-gc, Node with
// --expose-gc, Bun with its own `Bun.gc`), and erasable TypeScript so Node runs it as it is.
import process from "node:process";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

let session: Session | undefined;
const post = (method: string, params: object = {}) =>
  new Promise<Record<string, unknown>>((resolve, reject) => {
    if (!session) (session = new Session()).connect();
    session.post(
      method,
      params,
      (err, r) => err ? reject(err) : resolve(r as Record<string, unknown>),
    );
  });

const g = globalThis as {
  gc?: () => void;
  Bun?: { gc(force: boolean): void; generateHeapSnapshot(): unknown };
};
const collect = () => {
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc();
  else throw new Error("no gc: run Deno with --v8-flags=--expose-gc, Node with --expose-gc");
};

createInterface({ input: process.stdin }).on("line", (line) => {
  const [command, file] = line.trim().split(" ");
  if (command === "heap" && file) {
    collect();
    // Bun: JSC's own snapshot format (nodes with sizes and class names), not V8's.
    if (g.Bun) writeFileSync(file, JSON.stringify(g.Bun.generateHeapSnapshot()));
    console.log(`HEAP ${g.Bun ? file : v8.writeHeapSnapshot(file)}`);
  }
  if (command === "sample" && !file) {
    post("HeapProfiler.startSampling", {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    }).then(() => console.log("SAMPLING"));
  } else if (command === "sample") {
    post("HeapProfiler.stopSampling").then((r) => {
      writeFileSync(file, JSON.stringify(r.profile));
      console.log(`SAMPLE ${file}`);
    });
  }
  if (command === "types") {
    // Bun: live objects by type (JSC's own counts), to diff before and after the joins.
    collect();
    import("bun:jsc").then((jsc) => console.log(`TYPES ${JSON.stringify(jsc.heapStats())}`));
  }
  if (command !== "snap") return;
  collect();
  collect();
  const m = process.memoryUsage();
  console.log(
    `SNAP ${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal })}`,
  );
});

await import(pathToFileURL(process.argv[2]).href);
