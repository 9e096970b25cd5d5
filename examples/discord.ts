/**
 * Serve real Discord guilds to d-zone: a {@link WebSocketServer} whose data
 * source is the Discord gateway. Configuration comes from a JSON file
 * (`--config`, see docs/discord.md) or, for the simple case, from the
 * environment; every server flag of `examples/main.ts` works here too:
 *
 * ```sh
 * export DISCORD_TOKEN=...                 # bot token (required unless in the file)
 * export DISCORD_GUILD_IDS=123,456         # guilds to show, first is the default
 * deno run -A examples/discord.ts --port 3000
 * deno run -A examples/discord.ts --config discord-config.json --trust-proxy 127.0.0.1
 * bun run examples/discord.ts --config discord-config.json   # the same on Bun
 * deno run -A examples/discord.ts --help
 * ```
 *
 * @module
 */
import process from "node:process";
import { main } from "../src/discord/_cli.ts";
export { socketUrl, USAGE } from "../src/discord/_cli.ts";

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
