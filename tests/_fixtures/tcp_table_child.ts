// Asks the kernel-table helpers about a live connection and a listener with one connection
// waiting, while every descriptor is in use and again after, then prints the answers as one JSON
// line. Run under a low `ulimit -n`, so that using every descriptor is quick.
import { acceptQueue, remoteKeys, socketHeld } from "../../src/transport/_tcp_table.ts";

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
const accepted = await listener.accept();
const waiting = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
const keys = remoteKeys("127.0.0.1", client.localAddr.port);

const files: Deno.FsFile[] = [];
try {
  for (;;) files.push(Deno.openSync("/dev/null"));
} catch { /* out of descriptors */ }
// `null` for "cannot tell", which JSON would leave out as undefined.
const ask = () => ({
  held: socketHeld(keys) ?? null,
  queued: acceptQueue(listener.addr.port) ?? null,
});
const during = ask();
for (const f of files) f.close();
// The connection table is read at most once a second: wait past that before asking again.
await new Promise((r) => setTimeout(r, 1100));
const after = ask();
console.log(JSON.stringify({ descriptors: files.length, during, after }));
for (const c of [client, accepted, waiting]) c.close();
listener.close();
