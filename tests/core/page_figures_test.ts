// The figures README.md gives for the page in public/: its size, and the reconnect backoff, read
// from the page's own code so a change there fails here until the README says the new figure.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, ROOT));

Deno.test("page figures: the page's size is the one README.md gives", async () => {
  const readme = await read("README.md");
  const stated = Number(readme.match(/about (\d+) KB/)?.[1]);
  assert.ok(stated > 0, "README.md gives the page's size");
  let bytes = 0;
  for await (const e of Deno.readDir(new URL("public/", ROOT))) {
    if (e.isFile && /\.(html|css|js)$/.test(e.name)) {
      bytes += (await Deno.stat(new URL(`public/${e.name}`, ROOT))).size;
    }
  }
  // "About": within 2 KB.
  assert.ok(Math.abs(bytes / 1024 - stated) <= 2, `the page is ${(bytes / 1024).toFixed(1)} KB`);
});

Deno.test("page figures: the reconnect backoff README.md states is the page's", async () => {
  const app = await read("public/app.js");
  const base = Number(app.match(/const BACKOFF_BASE_MS = (\d+);/)?.[1]);
  const cap = Number(app.match(/const BACKOFF_CAP_MS = (\d+);/)?.[1]);
  // Equal jitter: the step doubles from the base up to the cap, the delay is its upper half.
  assert.match(app, /Math\.min\(BACKOFF_CAP_MS, BACKOFF_BASE_MS \* 2 \*\* attempt\)/);
  assert.match(app, /step \/ 2 \+ Math\.random\(\) \* \(step \/ 2\)/);
  const s = (ms: number) => String(ms / 1000);
  const readme = await read("README.md");
  const stated = `(${s(base / 2)}–${s(base)} s at first, doubling up to ${s(cap / 2)}–${s(cap)} s)`;
  assert.ok(readme.replace(/\s+/g, " ").includes(stated), `README.md should say ${stated}`);
});
