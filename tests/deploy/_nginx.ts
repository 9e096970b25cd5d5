// Debian's real nginx running examples/deploy/nginx.conf: the file the guide tells operators
// to install, with only its ports, upstreams and certificate paths swapped for test ones.
import { fileURLToPath } from "node:url";
import type { SelfSigned } from "./_tls.ts";
import { ensureTool } from "../../tools/_install.ts";

const SITE = fileURLToPath(new URL("../../examples/deploy/nginx.conf", import.meta.url));

/**
 * Install Debian's nginx and openssl when missing and we may (root with apt-get), as the Redis
 * tests do for redis-server; otherwise fail with the command to run (tools/_install.ts).
 */
export async function ensureNginx(): Promise<void> {
  await ensureTool("nginx");
}

/** A free TCP port on 127.0.0.1 (closed again: nginx binds it next). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running nginx. */
export interface Nginx extends AsyncDisposable {
  https: number;
  http: number;
  errorLog(): Promise<string>;
}

function swap(text: string, from: string, to: string): string {
  const n = text.split(from).length - 1;
  if (n !== 1) throw new Error(`nginx.conf: expected "${from}" once, found it ${n} times`);
  return text.replace(from, to);
}

/** Start nginx with the repository's site file in front of `upstreams` (dback ports). */
export async function startNginx(upstreams: number[], cert: SelfSigned): Promise<Nginx> {
  await ensureNginx();
  const dir = await Deno.makeTempDir({ prefix: "dback-nginx-" });
  const https = freePort();
  const http = freePort();
  let site = await Deno.readTextFile(SITE);
  site = swap(site, "listen 80;", `listen 127.0.0.1:${http};`);
  site = swap(site, "listen 443 ssl;", `listen 127.0.0.1:${https} ssl;`);
  site = swap(
    site,
    "server 127.0.0.1:3000;",
    upstreams.map((p) => `server 127.0.0.1:${p};`).join("\n    "),
  );
  site = swap(site, "/etc/letsencrypt/live/dzone.example/fullchain.pem", cert.certFile);
  site = swap(site, "/etc/letsencrypt/live/dzone.example/privkey.pem", cert.keyFile);
  await Deno.writeTextFile(`${dir}/site.conf`, site);
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 2048; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`,
  );
  const child = new Deno.Command("nginx", {
    args: ["-p", dir, "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: https })).close();
      break;
    } catch {
      if (exited || Date.now() > deadline) {
        if (!exited) child.kill("SIGKILL");
        await child.status;
        const log = await Deno.readTextFile(`${dir}/error.log`).catch(() => "");
        await Deno.remove(dir, { recursive: true });
        throw new Error(`nginx did not start: ${await stderr}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    https,
    http,
    errorLog: () => Deno.readTextFile(`${dir}/error.log`).catch(() => ""),
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM"); // fast shutdown: open WebSockets are cut
      } catch { /* exited */ }
      await child.status;
      await stderr;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
