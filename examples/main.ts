/**
 * A working d-zone backend with the mock world on port 3000:
 *
 * ```sh
 * deno run -A examples/main.ts            # or: deno task start
 * deno run -A examples/main.ts --help
 * ```
 *
 * @module
 */
import { main } from "../src/cli.ts";

Deno.exit(await main(Deno.args));
