// dback's own JavaScript per join on Deno, without sockets: the real routes, upgrade path,
// admission, connection and protocol handler answer upgrade requests built in memory, with
// Deno's `upgradeWebSocket` replaced by a fake socket; each join is the upgrade, the open (server
// list), a `connect` and its `server-join`, and at the end of a round every client closes. What
// the bare runtime does per join (HTTP parsing, the WebSocket handshake, writes) is not in it, so
// the figure is the part of a join that dback's code adds, and it moves far less with the
// machine's load than a join rate does. Rounds of 2,000 joins after a warm-up round; the median.
//
//   deno run -A bench/join_js.ts                  # this tree
//   deno run -A --config=<tree>/deno.json bench/join_js.ts <tree> [<tree> ...]   # other copies
//
// Give several trees to compare builds (e.g. an exported older commit): they run interleaved,
// each in its own process, three times.
import { fileURLToPath } from "node:url";

const ROUNDS = 7;
const PER_ROUND = 2000;

interface Events {
  open(peer: unknown): void;
  message(data: string): void;
  close(code: number): void;
}

/** One process: joins against the tree at `root`; prints the median µs per join. */
async function child(root: string): Promise<void> {
  const { denoTransport } = await import(`${root}/src/transport/_deno.ts`);
  const dback = await import(`${root}/mod.ts`);
  let last: Events | undefined;
  denoTransport.upgrade = (_req: Request, _ctx: unknown, _limits: unknown, events: Events) => {
    last = events;
    return new Response(null, { status: 200 });
  };
  const users: Record<string, unknown> = {};
  for (let i = 0; i < 100; i++) {
    const uid = "2" + String(i).padStart(17, "0");
    users[uid] = { uid, username: `user${i}`, status: "online", roleColor: "#123456" };
  }
  const server = new dback.WebSocketServer({
    logLevel: "warn",
    maxConnections: 1e7,
    maxConnectionsPerIp: 1e7,
    ipFramesPerSecond: 1e9,
    ipBytesPerSecond: 1e12,
    ipJoinsPerSecond: 1e9,
    ipJoinBurst: 1e9,
    callbacks: {
      getServerData: () => ({
        "100000000000000001": { id: "bench", name: "Bench", default: true },
      }),
      getUserData: () => users,
    },
  });
  await server.start({ listen: false });
  let sent = 0;
  const peer = {
    bufferedAmount: 0,
    isOpen: true,
    send: () => void sent++,
    close() {},
    terminate: () => false,
    gone: () => true,
  };
  const info = { remoteAddr: { hostname: "127.0.0.1", port: 40000, transport: "tcp" } };
  const connect = JSON.stringify({ type: "connect", data: { server: "bench" } });
  const headers = { host: "127.0.0.1:8080", upgrade: "websocket", connection: "Upgrade" };
  const round = async (n: number) => {
    const joined: Events[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const want = sent + 2; // the server list and the join
      await server.fetch(new Request("http://127.0.0.1:8080/", { headers }), info);
      const events = last!;
      events.open(peer);
      events.message(connect);
      // The connect's turns; a join that waits on more (a user map refresh) gets timer turns.
      for (let t = 0; sent < want; t++) {
        await (t < 50 ? null : new Promise((r) => setTimeout(r, 0)));
      }
      joined.push(events);
    }
    for (const events of joined) events.close(1000);
    return (performance.now() - t0) * 1000 / n;
  };
  await round(PER_ROUND);
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) times.push(await round(PER_ROUND));
  if (sent !== (ROUNDS + 1) * PER_ROUND * 2) {
    throw new Error(`${sent} frames: not every join completed`);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ root, medianUs: times[ROUNDS >> 1], rounds: times }));
  Deno.exit(0);
}

if (Deno.env.get("JOIN_JS_CHILD")) {
  await child(Deno.env.get("JOIN_JS_CHILD")!);
} else {
  const here = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
  const roots = Deno.args.length ? Deno.args : [here];
  const results = new Map<string, number[]>(roots.map((r) => [r, []]));
  for (let rep = 0; rep < (roots.length > 1 ? 3 : 1); rep++) {
    for (const root of roots) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `--config=${root}/deno.json`, fileURLToPath(import.meta.url)],
        env: { JOIN_JS_CHILD: root },
        stderr: "inherit",
      }).output();
      const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      results.get(root)!.push(r.medianUs);
    }
  }
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  for (const [root, us] of results) {
    console.log(
      `${root}: ${us.map((u) => u.toFixed(1)).join(" / ")} µs of dback's JavaScript per join`,
    );
  }
  console.log(`load average ${load}`);
}
