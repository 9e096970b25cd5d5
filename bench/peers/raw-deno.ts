// The floor: a minimal Deno.serve + Deno.upgradeWebSocket fan-out loop speaking
// the same minimal protocol (server-list on open, connect → server-join,
// `message` broadcasts), with no validation, limits or slow-client protection.
//
//   deno run -A bench/peers/raw-deno.ts --users 100
import {
  createPublisher,
  errorFrame,
  makeUsers,
  messageFrame,
  parseArgs,
  parseConnect,
  SERVER_LIST,
  serverJoinFrame,
} from "./common.mjs";

const { users } = parseArgs(Deno.args);
const usersJson = JSON.stringify(makeUsers(users));
const joined = new Set<WebSocket>();

const publish = createPublisher((text) => {
  const frame = messageFrame(text);
  for (const ws of joined) if (ws.readyState === WebSocket.OPEN) ws.send(frame);
});

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`READY ${port}`),
}, (req) => {
  if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => socket.send(SERVER_LIST);
    socket.onmessage = (e) => {
      const r = parseConnect(typeof e.data === "string" ? e.data : "");
      if ("error" in r) return socket.send(errorFrame(r.error));
      socket.send(serverJoinFrame(usersJson, r.server));
      joined.add(socket);
    };
    socket.onclose = () => joined.delete(socket);
    return response;
  }
  const body = publish(new URL(req.url).pathname);
  return body === null
    ? new Response("not found\n", { status: 404 })
    : new Response(body, { headers: { "content-type": "application/json" } });
});

// Exit cleanly on SIGTERM so that a --cpu-prof profile is written (see BENCH_DENO_FLAGS in _targets.ts).
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
