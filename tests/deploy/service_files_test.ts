// The service files of the deploy guide: the systemd unit verified by systemd-analyze (no
// systemd needs to run), its promises checked key by key, its ExecStart flags accepted by the
// command; the Prometheus scrape configuration pointed at a real --metrics-port.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ServerProcess } from "../_fixtures/_server_process.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const UNIT = `${ROOT}examples/deploy/dback.service`;

function keys(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(current && eq > 0, `not a key=value line in a section: ${line}`);
    current.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return sections;
}

Deno.test("dback.service: restart policy, file limit, a non-root user, and flags the command accepts", async () => {
  const text = await Deno.readTextFile(UNIT);
  const s = keys(text);
  const service = s.get("Service")!;
  assert.ok(s.has("Unit") && s.has("Install"));
  assert.equal(service.get("Restart"), "on-failure");
  // "at most 5 times in 5 minutes" (docs/deploy.md): the start limit lives in [Unit].
  assert.equal(s.get("Unit")!.get("StartLimitBurst"), "5");
  assert.equal(s.get("Unit")!.get("StartLimitIntervalSec"), "300");
  assert.ok(Number(service.get("LimitNOFILE")) >= 65536);
  const user = service.get("User");
  assert.ok(user && user !== "root" && user !== "0", `User=${user}`);
  assert.equal(s.get("Install")!.get("WantedBy"), "multi-user.target");
  // The command line of ExecStart parses: every flag exists and every value is valid.
  const exec = service.get("ExecStart")!.split(/\s+/);
  const script = exec.findIndex((a) => a.endsWith("examples/discord.ts"));
  assert.ok(script > 0, exec.join(" "));
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}examples/discord.ts`, ...exec.slice(script + 1), "--version"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
});

Deno.test("dback.service: systemd-analyze verify accepts it", async (t) => {
  let have = false;
  try {
    have = (await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
      .output()).success;
  } catch { /* not installed */ }
  if (!have) {
    // The key checks above still ran; systemd-analyze comes with the systemd package.
    await t.step({ name: "systemd-analyze is not installed (skipped)", ignore: true, fn() {} });
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    // The unit names /usr/local/bin/deno; verify checks that the binary exists.
    const text = (await Deno.readTextFile(UNIT)).replace("/usr/local/bin/deno", Deno.execPath());
    await Deno.writeTextFile(`${dir}/dback.service`, text);
    const r = await new Deno.Command("systemd-analyze", {
      args: ["verify", `${dir}/dback.service`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, out);
    assert.doesNotMatch(out, /Unknown key|Unknown section|ignoring/, out);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prometheus.yml scrapes what --metrics-port serves", async () => {
  const text = await Deno.readTextFile(`${ROOT}examples/deploy/prometheus.yml`);
  const target = /targets: \["([\d.]+):(\d+)"\]/.exec(text);
  const path = /metrics_path: (\S+)/.exec(text);
  assert.ok(target && path, text);
  // The comment's command, with the file's port (taken if busy: then a free one, same path).
  let port = Number(target[2]);
  try {
    Deno.listen({ hostname: target[1], port }).close();
  } catch {
    const l = Deno.listen({ hostname: target[1], port: 0 });
    port = (l.addr as Deno.NetAddr).port;
    l.close();
  }
  await using child = await ServerProcess.spawn({
    args: [
      `${ROOT}examples/main.ts`,
      "--port",
      "0",
      "--host",
      target[1],
      "--metrics-port",
      String(port),
    ],
    portPattern: /\/metrics on [\d.]+:(\d+)/,
  });
  const res = await fetch(`http://${target[1]}:${child.port}${path[1]}`);
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^dback_up 1$/m);
});
