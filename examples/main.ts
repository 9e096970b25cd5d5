/**
 * A working d-zone backend with the mock world on port 3000:
 *
 * ```sh
 * deno run -A examples/main.ts            # or: deno task start
 * bun run examples/main.ts
 * deno run -A examples/main.ts --help
 * ```
 *
 * @module
 */
import process from "node:process";
import { main } from "../src/cli.ts";

process.exit(await main(process.argv.slice(2)));
