// Runs on any runtime (`deno run -A`, `bun run`, `node` + this file + '<json>') for the runtime
// suite: builds a WebSocketServer from JSON options, prints one `ready` line, then answers control
// lines on stdin (broadcasts, metrics, RSS) and prints its log records, one JSON object per line.
import process from "node:process";
import { createInterface } from "node:readline";
import {
  type MockOptions,
  MockSource,
  type ServerMap,
  type ServerOptions,
  type UserMap,
  WebSocketServer,
} from "../../mod.ts";

interface Spec {
  options?: ServerOptions;
  /** Replace the mock world with these servers and users. */
  servers?: ServerMap;
  users?: UserMap;
  /** Options of the mock world (intervals). */
  mock?: MockOptions;
  /** Mount dback in a server of our own, Bun.serve or Deno.serve (paths under /app/ answer "my app"). */
  mount?: boolean;
  /** With `servers`: a `validateDiscordUser` that refuses everyone (its calls are in the metrics). */
  denyLogins?: boolean;
}

interface BunLike {
  serve(o: Record<string, unknown>): { port: number; stop(force?: boolean): Promise<void> };
  gc(force: boolean): void;
}

interface DenoLike {
  serve(
    o: Record<string, unknown>,
    fetch: (req: Request, info: unknown) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
}

const spec: Spec = JSON.parse(process.argv[2] ?? "{}");
const print = (value: unknown) => process.stdout.write(JSON.stringify(value) + "\n");
const bun = (globalThis as unknown as { Bun?: BunLike }).Bun;
const deno = (globalThis as unknown as { Deno?: DenoLike }).Deno;
// Bun's own collector, else V8's (started with --expose-gc).
const gc = () => bun ? bun.gc(true) : (globalThis as { gc?: () => void }).gc?.();
const app = (req: Request, ctx: unknown) =>
  new URL(req.url).pathname.startsWith("/app/") ? new Response("my app") : server.fetch(req, ctx);

const server = new WebSocketServer({
  port: 0,
  hostname: "127.0.0.1",
  logLevel: "debug",
  logSink: (log) => print({ log }),
  ...(spec.mock ? { source: new MockSource(spec.mock) } : {}),
  ...spec.options,
  ...(spec.servers
    ? {
      callbacks: {
        getServerData: () => spec.servers!,
        getUserData: () => spec.users ?? {},
        ...(spec.denyLogins ? { validateDiscordUser: () => false } : {}),
      },
    }
    : {}),
});

let port: number;
let host: { stop(): Promise<void> } | undefined;
if (spec.mount && server.runtime === "bun") {
  await server.start({ listen: false });
  const s = bun!.serve({ port: 0, hostname: "127.0.0.1", fetch: app, websocket: server.websocket });
  port = s.port;
  host = { stop: () => s.stop(true) };
} else if (spec.mount && server.runtime === "deno") {
  await server.start({ listen: false });
  const s = deno!.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app);
  port = s.addr.port;
  host = { stop: () => s.shutdown() };
} else if (spec.mount) {
  throw new Error(`mounting is not offered on the ${server.runtime} transport`);
} else {
  await server.start();
  port = server.port;
}
print({ ready: true, port, runtime: server.runtime, pid: process.pid });

type Op = { id: number; op: string; arg?: never };
createInterface({ input: process.stdin }).on("line", (line) => {
  const { id, op, arg } = JSON.parse(line) as Op;
  try {
    let result: unknown;
    switch (op) {
      case "broadcastMessage":
        result = server.broadcastMessage(arg!);
        break;
      case "broadcastPresence":
        result = server.broadcastPresence(arg!);
        break;
      case "broadcastClientIdUpdate":
        result = server.broadcastClientIdUpdate(arg!);
        break;
      case "flood": {
        // Many broadcasts in one go, without a control round trip each.
        const { count, event } = arg! as { count: number; event: never };
        let reached = 0;
        for (let i = 0; i < count; i++) reached += server.broadcastMessage(event);
        result = reached;
        break;
      }
      case "metrics":
        result = server.metrics;
        break;
      case "count":
        result = server.connectionCount;
        break;
      case "rss":
        gc();
        result = process.memoryUsage().rss;
        break;
      default:
        throw new Error(`unknown op ${op}`);
    }
    print({ id, result });
  } catch (err) {
    print({ id, error: err instanceof Error ? err.message : String(err) });
  }
});

const stop = async () => {
  await server.stop();
  await host?.stop();
  print({ stopped: true });
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
