// Warm the join path once in this process and print what joined each way, as one JSON line:
//   <runtime> tests/_fixtures/warm_child.ts [deno|bun|node]   (the transport; default the runtime's)
import process from "node:process";
import { warmJoinPath } from "../../src/_warm.ts";
import { loopbackAllowed, type TransportName } from "../../src/transport/mod.ts";

const transport = process.argv[2] as TransportName | undefined;
const first = await warmJoinPath({ transport, inMemory: 40, loopback: 30 });
const again = await warmJoinPath({ transport, inMemory: 40, loopback: 30 });
console.log(JSON.stringify({ allowed: loopbackAllowed(), first, again }));
// Nothing of the warm-up may keep the process alive: it ends on its own.
