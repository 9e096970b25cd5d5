// Every limit of the server options is a command-line flag of the same name in kebab-case,
// checked with the option's schema, listed in --help with its default; bad values name the flag.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseCli, USAGE } from "../../src/cli.ts";
import { LIMIT_FLAGS } from "../../src/_server_flags.ts";
import { ServerProcess } from "../_fixtures/_server_process.ts";
import { wsFrom } from "./_ws_from.ts";

const MAIN = fileURLToPath(new URL("../../examples/main.ts", import.meta.url));

Deno.test("limit flags: the ones the guide names exist; each round-trips into its option", () => {
  const names = LIMIT_FLAGS.map((l) => l.flag);
  for (
    const f of [
      "max-connections",
      "max-connections-per-ip",
      "ip-frames-per-second",
      "ip-bytes-per-second",
      "ip-login-checks-per-minute",
      "max-buffered-bytes",
      "high-water-bytes",
      "max-frame-bytes",
      "ipv6-prefix",
      "max-tracked-ips",
      "shutdown-timeout-ms",
    ]
  ) assert.ok(names.includes(f), `--${f} is missing`);
  for (const l of LIMIT_FLAGS) {
    const value = l.integer ? l.defaultValue + 1 : l.defaultValue * 1.5;
    const extra = l.flag === "high-water-bytes" ? ["--max-buffered-bytes", "1e9"] : [];
    const cmd = parseCli([`--${l.flag}`, String(value), ...extra]);
    assert.equal(cmd.kind, "run", `--${l.flag} ${value}: ${JSON.stringify(cmd)}`);
    if (cmd.kind !== "run") continue;
    assert.equal((cmd.options as Record<string, unknown>)[l.key], value, `--${l.flag}`);
    for (const bad of ["abc", "-1", ""]) {
      const r = parseCli([`--${l.flag}`, bad]);
      assert.equal(r.kind, "error", `--${l.flag} ${JSON.stringify(bad)}`);
      assert.ok(
        r.kind === "error" && r.message.includes(`--${l.flag}`),
        `the message names the flag: ${JSON.stringify(r)}`,
      );
    }
    if (l.integer) {
      const r = parseCli([`--${l.flag}`, "2.5"]);
      assert.ok(r.kind === "error" && r.message.includes(`--${l.flag}`), `--${l.flag} 2.5`);
    }
    // Its --help entry (up to the next flag) names its default.
    const entry = USAGE.slice(USAGE.indexOf(`--${l.flag} <n>`)).split(/\n {2}-/)[0];
    assert.ok(entry.includes(`(default ${l.defaultValue})`), entry);
  }
  // A rule across options names the flag too.
  const r = parseCli(["--max-buffered-bytes", "1000", "--high-water-bytes", "2000"]);
  assert.ok(r.kind === "error" && r.message.includes("--max-buffered-bytes"), JSON.stringify(r));
});

Deno.test("deployment flags: proxies, origins, TLS, metrics", () => {
  const cmd = parseCli([
    "--trust-proxy",
    "127.0.0.1,10.0.0.0/8",
    "--trust-proxy",
    "::1",
    "--public-origin",
    "https://dzone.example",
    "--tls-cert",
    "c.pem",
    "--tls-key",
    "k.pem",
    "--metrics-port",
    "9100",
  ]);
  assert.ok(cmd.kind === "run");
  assert.deepEqual(cmd.options.trustProxy, ["127.0.0.1", "10.0.0.0/8", "::1"]);
  assert.deepEqual(cmd.options.publicOrigins, ["https://dzone.example"]);
  assert.deepEqual(cmd.options.metrics, { port: 9100 });
  assert.deepEqual(cmd.tlsFiles, { cert: "c.pem", key: "k.pem" });
  const local = parseCli([
    "--host",
    "0.0.0.0",
    "--metrics-port",
    "9464",
    "--metrics-host",
    "127.0.0.1",
  ]);
  assert.ok(local.kind === "run");
  assert.deepEqual(local.options.metrics, { port: 9464, hostname: "127.0.0.1" });
  const off = parseCli(["--no-metrics"]);
  assert.ok(off.kind === "run" && off.options.metrics === false);
  const errors: Array<[string[], RegExp]> = [
    [["--trust-proxy", "10.0.0.0/33"], /--trust-proxy/],
    [["--trust-proxy", "proxy.local"], /--trust-proxy/],
    [["--public-origin", "https://dzone.example/"], /--public-origin/],
    [["--allowed-origin", "dzone.example"], /--allowed-origin/],
    [["--tls-cert", "c.pem"], /--tls-cert and --tls-key/],
    [["--metrics-port", "9100", "--no-metrics"], /--no-metrics/],
    [["--metrics-host", "127.0.0.1"], /--metrics-host needs --metrics-port/],
  ];
  for (const [args, re] of errors) {
    const r = parseCli(args);
    assert.ok(r.kind === "error" && re.test(r.message), `${args.join(" ")}: ${JSON.stringify(r)}`);
  }
});

Deno.test("--max-connections-per-ip 2: the third connection is refused; a bad value exits 2 naming the flag", async () => {
  await using child = await ServerProcess.spawn({
    args: [MAIN, "--port", "0", "--host", "127.0.0.1", "--max-connections-per-ip", "2"],
    portPattern: /listening on http:\/\/127\.0\.0\.1:(\d+)/,
  });
  const from = () => wsFrom({ host: "127.0.0.1", port: child.port, localAddress: "127.0.0.50" });
  const a = await from();
  const b = await from();
  const c = await from();
  assert.deepEqual([a.status, b.status, c.status], [101, 101, 429]);
  for (const s of [a, b, c]) s.close();

  const bad = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--rate-burst", "lots"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /^error: --rate-burst must be a number/);

  const noCert = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--port", "0", "--tls-cert", "/nonexistent.pem", "--tls-key", MAIN],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(noCert.code, 1);
  assert.match(
    new TextDecoder().decode(noCert.stderr),
    /^error: --tls-cert \/nonexistent\.pem: no such file/,
  );

  const notPem = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "--port", "0", "--tls-cert", MAIN, "--tls-key", MAIN],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(notPem.code, 1);
  assert.match(
    new TextDecoder().decode(notPem.stderr),
    /^error: --tls-cert .*: not a PEM certificate/,
  );
});
