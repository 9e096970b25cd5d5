// What a bare `Deno.serve` WebSocket keeps after sending one big frame, with and without Deno's
// vectored writes (`DENO_USE_WRITEV`): no dback. A server child sends each of N clients (another
// child, which reads every byte) the same frames; the server's RSS is read after the drain (and a
// GC), with the clients still open, then after they closed; VmHWM is the peak. Three herds per
// server, each kept open: what the allocator holds after a herd's peak (freed, not given back,
// pinned by small allocations) serves the next one, so the growth from the second herd to the
// third is what each socket keeps.
//
//   deno run -A bench/deno_write_buffer.ts [--clients 50] [--out FILE]
//   deno run -A bench/deno_write_buffer.ts --table FILE   # the Markdown table docs/runtimes.md embeds
//   (children: `deno run -A bench/deno_write_buffer.ts serve|clients ...`)
import { parseArgs } from "node:util";
import { denoWriteBufferTable } from "./_deno_write_buffer_table.ts";
import { machineInfo } from "./_procfs.ts";

const MiB = 1024 * 1024;
const mode = Deno.args[0];
const SELF = new URL(import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function firstLine(child: Deno.ChildProcess, want: RegExp): Promise<RegExpMatchArray> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("child exited");
    buf += value;
    const m = buf.match(want);
    if (m) {
      reader.releaseLock();
      return m;
    }
  }
}

async function run(n: number, writev: boolean, bytes: number, frames: number) {
  const env: Record<string, string> = { DENO_USE_WRITEV: writev ? "1" : "" };
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", SELF, "serve"],
    env,
    stdout: "piped",
  }).spawn();
  const port = Number((await firstLine(server, /READY (\d+)/))[1]);
  const rss = async () => Number(await (await fetch(`http://127.0.0.1:${port}/rss`)).text()) / MiB;
  const hwm = () =>
    Number(Deno.readTextFileSync(`/proc/${server.pid}/status`).match(/VmHWM:\s+(\d+)/)![1]) /
    1024;
  const before = await rss();
  const herds: Deno.ChildProcess[] = [];
  const after: number[] = [];
  for (let h = 0; h < 3; h++) {
    const c = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        SELF,
        "clients",
        String(port),
        String(n),
        String(bytes),
        String(frames),
      ],
      stdout: "piped",
    }).spawn();
    await firstLine(c, /ALL/);
    herds.push(c);
    await sleep(1000);
    after.push(await rss());
  }
  const peak = hwm();
  for (const c of herds) c.kill();
  for (const c of herds) await c.status;
  await sleep(1500);
  const closed = await rss();
  server.kill();
  await server.status;
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    writev,
    frameBytes: bytes / frames,
    frames,
    rssBeforeMiB: r(before),
    rssAfterHerdsMiB: after.map(r),
    keptPerSocketMiB: r((after[2] - after[1]) / n),
    rssPeakMiB: r(peak),
    rssAfterCloseMiB: r(closed),
  };
}

if (mode === "serve") {
  // Text frames: `<kind> <bytes> <frames>` asks for that many frames of one shared string.
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/rss") {
      gc();
      return new Response(String(Deno.memoryUsage().rss));
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => {
      const [bytes, frames] = String(e.data).split(" ").map(Number);
      const text = "x".repeat(bytes / frames);
      for (let i = 0; i < frames; i++) socket.send(text);
      socket.send("done");
    };
    return response;
  });
  console.log(`READY ${server.addr.port}`);
} else if (mode === "clients") {
  const [port, n, bytes, frames] = Deno.args.slice(1).map(Number);
  let done = 0;
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    let got = 0;
    ws.onopen = () => ws.send(`${bytes} ${frames}`);
    ws.onmessage = (e) => {
      if (e.data !== "done") got += (e.data as string).length;
      else if (got !== bytes) throw new Error(`client ${i}: ${got} of ${bytes} bytes`);
      else if (++done === n) console.log("ALL");
    };
  }
} else {
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      clients: { type: "string", default: "50" },
      out: { type: "string" },
      table: { type: "string" },
      sizes: { type: "string", default: "13000000x1,4000000x1,1000000x13,65000x200" },
    },
  });
  if (args.table) {
    console.log(denoWriteBufferTable(JSON.parse(await Deno.readTextFile(args.table))));
    Deno.exit(0);
  }
  const n = Number(args.clients);

  const runs = [];
  // `<frame bytes>x<frames>` per client.
  for (const size of args.sizes!.split(",")) {
    const [frameBytes, frames] = size.split("x").map(Number);
    const bytes = frameBytes * frames;
    for (const writev of [false, true]) {
      const r = await run(n, writev, bytes, frames);
      console.error(JSON.stringify(r));
      runs.push(r);
    }
  }
  const report = {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    command: `deno run -A bench/deno_write_buffer.ts ${Deno.args.join(" ")}`.trim(),
    note:
      `bare Deno.serve, ${n} clients per herd, three herds per server (all kept open); kept per socket = RSS growth from the second herd to the third / clients; one run on a shared 2-core VM`,
    machine: machineInfo({ deno: `deno ${Deno.version.deno}` }, "deno (WebSocket clients)"),
    loadavg: Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number),
    runs,
  };
  const text = JSON.stringify(report, null, 2) + "\n";
  if (args.out) await Deno.writeTextFile(args.out, text);
  else console.log(text);
}
