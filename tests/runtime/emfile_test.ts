// Issue 9, item 4: running out of file descriptors. A server child runs under
// `ulimit -n 256` and gets more silent TCP connections than that (bounded:
// 400). Bare Deno.serve dies of it; with the accept guard the process lives,
// keeps its clients, and serves again once the flood is gone.
import assert from "node:assert/strict";
import { joined } from "../_fixtures/helpers.ts";
import { eventually, ServerProcess, writeAll } from "../_fixtures/_server_process.ts";
import { serveGuarded } from "../../src/transport/_accept_guard.ts";

const FIXTURE = new URL("../_fixtures/guarded_server.ts", import.meta.url).pathname;
const LIMIT = 256;
const FLOOD = 400;

/** Open up to `n` silent TCP connections; refused ones are counted, not retried. */
async function flood(port: number, n: number): Promise<{ conns: Deno.TcpConn[]; refused: number }> {
  const conns: Deno.TcpConn[] = [];
  let refused = 0;
  for (let i = 0; i < n; i++) {
    try {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      refused++;
    }
  }
  return { conns, refused };
}

function closeAll(conns: Deno.TcpConn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* already closed */ }
  }
}

/** GET /healthz over a fresh TCP connection; the status, or 0 when there is no answer in `ms`. */
async function healthz(port: number, ms = 2000): Promise<number> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch {
    return 0;
  }
  const timer = setTimeout(() => conn.close(), ms);
  try {
    await writeAll(
      conn,
      new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    if (n === null) return 0;
    return Number(new TextDecoder().decode(buf.subarray(0, n)).split(" ")[1]) || 0;
  } catch {
    return 0;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
  }
}

Deno.test("EMFILE: bare Deno.serve ends the process (why the guard exists)", async () => {
  await using server = await ServerProcess.spawn({ args: [FIXTURE, "--bare"], openFiles: LIMIT });
  const { conns } = await flood(server.port, FLOOD);
  try {
    const status = await server.waitExit(10_000);
    assert.ok(
      status !== null && status.code !== 0,
      "Deno.serve survived EMFILE without the guard: Deno changed; re-check the guard and " +
        `update docs/operating.md (process ${
          status === null ? "still running" : `exited ${status.code}`
        })`,
    );
    assert.match(server.output, /Too many open files/);
  } finally {
    closeAll(conns);
  }
});

Deno.test("EMFILE: dback (its Deno transport runs the accept guard) lives, keeps its clients and serves again", async () => {
  await using server = await ServerProcess.spawn({
    args: [FIXTURE],
    openFiles: LIMIT,
  });
  const url = `ws://127.0.0.1:${server.port}`;
  const viewer = await joined(url, "dworld");
  let conns: Deno.TcpConn[] = [];
  try {
    const before = viewer.frames.length;
    const f = await flood(server.port, FLOOD);
    conns = f.conns;
    // The child accepts at its own pace: wait until it has reached the limit, not just after.
    await eventually(() => server.openFiles() >= LIMIT - 5, 10_000);
    const held = server.openFiles();
    console.log(
      `flood: ${conns.length} accepted by the kernel, ${f.refused} refused, ` +
        `child holds ${held} of ${LIMIT} fds`,
    );
    assert.ok(held >= LIMIT - 5, `the flood did not reach the fd limit (${held})`);
    assert.ok(
      await eventually(
        () => /accept failed \(.*Too many open files/.test(server.output),
        5000,
      ),
      `no accept failure logged:\n${server.output}`,
    );
    // The WebSocket accepted before the flood keeps receiving the mock world.
    assert.ok(
      await eventually(() => viewer.frames.length > before + 2, 5000),
      "the joined viewer stopped receiving during the flood",
    );
    assert.equal(server.exited, null, `the child exited:\n${server.output}`);
    closeAll(conns);
    conns = [];
    // Once the flood is gone, the server takes new clients again.
    const gone = Date.now();
    assert.ok(await eventually(async () => await healthz(server.port) === 200, 10_000));
    console.log(`serving again ${Date.now() - gone} ms after the flood closed`);
    assert.ok(
      await eventually(() => /listening again on port \d+/.test(server.output), 5000),
    );
    const fresh = await joined(url, "dworld");
    await fresh.close();
    assert.equal(viewer.ws.readyState, WebSocket.OPEN, "the first viewer is still connected");
    // And it still shuts down cleanly on SIGTERM.
    server.child.kill("SIGTERM");
    const status = await server.waitExit(10_000);
    assert.equal(status?.code, 0, server.output);
    assert.equal((await viewer.closed).code, 1001);
    assert.match(server.output, /STOPPED/);
  } finally {
    closeAll(conns);
    await viewer.close();
  }
});

// Deno's node:net, which the Node transport runs on when opted in on Deno: after an accept fails
// for want of a descriptor, its listener accepts nothing more and tells nothing, while the kernel
// keeps queueing connections. Without a connection cap that happens in every flood.
for (const watched of [false, true]) {
  Deno.test(
    watched
      ? "EMFILE: Deno's node:http under the Node transport's listener watch listens again"
      : "EMFILE: Deno's node:http alone stops accepting for good (why the watch exists)",
    async () => {
      await using server = await ServerProcess.spawn({
        args: [FIXTURE, "--node", ...(watched ? ["--watch"] : [])],
        openFiles: 64,
      });
      const { conns } = await flood(server.port, 100);
      try {
        await eventually(() => server.openFiles() >= 60, 5000);
        assert.ok(server.openFiles() >= 60, `the flood did not reach the fd limit`);
      } finally {
        closeAll(conns);
      }
      // Polled for 10 s: the watch looks every 250 ms; Deno's listener, once stuck, stays stuck.
      const served = await eventually(async () => await healthz(server.port, 1000) === 200, 10_000);
      if (watched) {
        assert.ok(served, `not serving again:\n${server.output}`);
        assert.match(server.output, /stopped accepting \(\d+ connections waiting\)/);
        assert.match(server.output, /listening again on port \d+/);
      } else {
        assert.ok(
          !served,
          "Deno's node:http accepted again by itself: Deno changed; re-check the Node " +
            "transport's listener watch and docs/runtimes.md",
        );
      }
    },
  );
}

Deno.test("serveGuarded: relistens on the same port with back-off; shutdown ends it", async () => {
  const logs: string[] = [];
  const killers: Array<() => Promise<void>> = [];
  let failNext = 0;
  // Deno.serve, except that the test can end a server's accept loop with an error.
  const serve = (
    options: Deno.ServeTcpOptions,
    handler: Deno.ServeHandler<Deno.NetAddr>,
  ): Deno.HttpServer<Deno.NetAddr> => {
    if (failNext > 0) {
      failNext--;
      throw new Error("Too many open files (os error 24)");
    }
    const real = Deno.serve(options, handler);
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const finished = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const shutdown = async () => {
      await real.shutdown();
      resolve();
    };
    killers.push(async () => {
      await real.shutdown();
      reject(new Error("Http: Error: Too many open files (os error 24)"));
    });
    return {
      finished,
      addr: real.addr,
      ref: () => real.ref(),
      unref: () => real.unref(),
      shutdown,
      [Symbol.asyncDispose]: shutdown,
    };
  };
  let listened = 0;
  const server = serveGuarded(
    { hostname: "127.0.0.1", port: 0, onListen: () => listened++ },
    () => new Response("ok"),
    { serve, log: (m) => logs.push(m), retryMs: 10, maxRetryMs: 40 },
  );
  const port = server.addr.port;
  assert.equal(await healthz(port), 200);
  failNext = 2;
  await killers[0]();
  assert.ok(await eventually(() => killers.length === 2, 3000), logs.join("\n"));
  assert.equal(server.addr.port, port);
  assert.equal(await healthz(port), 200, "serving again on the same port");
  assert.equal(listened, 1, "onListen is for the first bind only");
  assert.match(
    logs[0],
    /^accept failed \(.*Too many open files.*\); listening again on port \d+ in 10 ms$/,
  );
  assert.match(logs[1], /in 20 ms$/);
  assert.match(logs[2], /in 40 ms$/);
  assert.equal(logs[3], `listening again on port ${port}`);
  // The next failure comes right after: the back-off keeps growing (capped).
  await killers[1]();
  assert.ok(await eventually(() => killers.length === 3, 3000));
  assert.match(logs[4], /in 40 ms$/);
  let done = false;
  server.finished.then(() => done = true);
  await server.shutdown();
  await server.finished;
  assert.ok(done);
  assert.equal(await healthz(port, 500), 0, "nothing listens after shutdown");
});

Deno.test("EMFILE: the kernel-table helpers say 'cannot tell' without a descriptor, then answer again", async () => {
  const child = new URL("../_fixtures/tcp_table_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: ["-c", `ulimit -n 64 && exec "$0" "$@"`, Deno.execPath(), "run", "-A", child],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(text.trim().split("\n").pop()!);
  assert.ok(r.descriptors > 0, "the child did not use up its descriptors");
  assert.deepEqual(r.during, { held: null, queued: null });
  // A read that failed for want of a descriptor is not taken as "no table here" for good.
  assert.deepEqual(r.after, { held: true, queued: 1 });
});
