// A dback server on one guild of `members` members from user callbacks (not the mock), for the
// memory-bound attacks. Runs under Deno, Bun and Node: `<runtime> big_guild_server.ts '<json>'`.
// Prints `PORT <n>` once listening; with `presenceMs`, broadcasts one presence change that often.
import process from "node:process";
import { type ServerOptions, type UserMap, WebSocketServer } from "../../mod.ts";

interface Spec {
  /** Members of the guild. */
  members?: number;
  /** Milliseconds between presence broadcasts; 0 for a quiet guild. */
  presenceMs?: number;
  /** Server options (limits) on top of the defaults. */
  options?: ServerOptions;
}

const spec: Spec = JSON.parse(process.argv[2] ?? "{}");
const members = spec.members ?? 100_000;
const users: UserMap = {};
for (let i = 0; i < members; i++) {
  users[`${100_000_000_000_000_000n + BigInt(i)}`] = {
    username: `member-${i}`,
    status: i % 3 === 0 ? "idle" : "online",
    roleColor: "#336699",
  };
}
const server = new WebSocketServer({
  port: 0,
  hostname: "127.0.0.1",
  logLevel: "warn",
  ...spec.options,
  callbacks: {
    getServerData: () => ({ "1": { id: "big", name: "Big", default: true } }),
    getUserData: () => users,
  },
});
await server.start();
console.log(`PORT ${server.port}`);

const ids = Object.keys(users);
let n = 0;
if ((spec.presenceMs ?? 0) > 0) {
  setInterval(() => {
    const uid = ids[n++ % ids.length];
    server.broadcastPresence({ server: "big", uid, status: n % 2 ? "idle" : "online" });
  }, spec.presenceMs);
}
// Collect garbage every second where the runtime lets us, so that RSS follows what is held.
const gc = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc ??
  (globalThis as { gc?: () => void }).gc;
if (gc) setInterval(() => gc(true), 1000);
process.on("SIGTERM", () => server.stop().then(() => process.exit(0)));
