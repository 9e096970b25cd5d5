// One Ctrl-C arrives twice under `deno task` (terminal to the group, then forwarded): a repeat
// within ECHO_MS of the first is the same press; a later one is a second press. On a fake clock.
import assert from "node:assert/strict";
import process from "node:process";
import { ECHO_MS, shutdownSignal } from "../../src/_flags.ts";

Deno.test("shutdownSignal: a repeat within the echo window is ignored, a later one is the second press", async () => {
  let now = 1000;
  const s = shutdownSignal(() => now);
  let again = 0;
  s.onAgain(() => again++);
  try {
    process.emit("SIGINT", "SIGINT");
    assert.equal(await s.signalled, "SIGINT");
    now += ECHO_MS - 1;
    process.emit("SIGINT", "SIGINT"); // deno task forwarding the same press
    assert.equal(again, 0);
    now += 1;
    process.emit("SIGTERM", "SIGTERM");
    assert.equal(again, 1);
  } finally {
    s.dispose();
  }
});
