// Ctrl-C on `deno task start`: the terminal sends SIGINT to the whole process group and
// `deno task` forwards it to the server once more. One press must drain and exit 0.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

Deno.test("setsid deno task start + one SIGINT to the group: exit 0, no 'second signal'", async () => {
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "task", "start", "--port", "0", "--host", "127.0.0.1"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) out += d.decode(c, { stream: true });
  };
  const drained = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const deadline = Date.now() + 20_000;
  while (!/listening on/.test(out)) {
    assert.ok(Date.now() < deadline, `server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // A joined viewer makes the drain take a moment, as in real use.
  const port = Number(out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/)![1]);
  const viewer = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((r) => viewer.onmessage = r);
  const closed = new Promise((r) => viewer.onclose = r);
  // setsid made the task its own process group leader: signal the group, as a terminal does.
  Deno.kill(-child.pid, "SIGINT");
  const status = await child.status;
  await closed;
  await drained;
  assert.ok(!out.includes("second signal"), out);
  assert.match(out, /stopped/, out);
  assert.equal(status.code, 0, out);
});
