// Requests that need no I/O (upgrades, the API answers) are answered in the same call, not
// through a promise the runtime would have to wait on; static files stay asynchronous, and
// the public `fetch` is a promise whatever the route.
import assert from "node:assert/strict";
import { compose } from "../../src/_compose.ts";
import { Logger } from "../../src/log.ts";
import { Metrics } from "../../src/_metrics.ts";
import { parseOptions } from "../../src/options.ts";
import { VERSION } from "../../mod.ts";

const parts = () =>
  compose(
    parseOptions({ logLevel: "silent" }),
    new Logger("silent"),
    new Metrics(),
    { state: () => "running", url: () => undefined },
    new URL("../../public/", import.meta.url),
  );

Deno.test("API answers and refused upgrades come back in the same call", async () => {
  const p = parts();
  const version = p.fetch(new Request("http://dzone.local/api/version"), undefined);
  assert.ok(version instanceof Response);
  assert.equal((await version.json()).version, VERSION);
  const health = p.fetch(new Request("http://dzone.local/healthz"), undefined);
  assert.ok(health instanceof Response);
  assert.equal(health.status, 200);
  // No runtime context to upgrade through: refused at once, still without a promise.
  const upgrade = p.fetch(
    new Request("http://dzone.local/", { headers: { upgrade: "websocket" } }),
    undefined,
  );
  assert.ok(upgrade instanceof Response);
  assert.equal(upgrade.status, 400);
  await upgrade.body?.cancel();
});

Deno.test("static files are still served asynchronously", async () => {
  const page = parts().fetch(new Request("http://dzone.local/"), undefined);
  assert.ok(page instanceof Promise);
  const res = await page;
  assert.equal(res.status, 200);
  await res.body?.cancel();
});
