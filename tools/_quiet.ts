/**
 * Runs a command with its output captured (stdout and stderr interleaved, colours kept), so the
 * task scripts can print one line on success and everything on failure.
 *
 * @module
 */

/** What a finished command printed, and whether it succeeded. */
export interface Captured {
  ok: boolean;
  code: number;
  output: string;
}

/**
 * Run `cmd` from the repository root; with `echo`, its output also goes to the terminal as it
 * comes (the `--verbose` mode of the task scripts).
 */
export async function capture(cmd: string[], echo = false): Promise<Captured> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: new URL("../", import.meta.url),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const chunks: Uint8Array[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, to: typeof Deno.stdout) => {
    for await (const chunk of stream) {
      chunks.push(chunk);
      if (echo) await to.write(chunk);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  const output = new TextDecoder().decode(await new Blob(chunks as BlobPart[]).bytes());
  return { ok: status.success, code: status.code, output };
}

/** The text without ANSI colour codes. */
export function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}
