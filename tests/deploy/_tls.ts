// A self-signed certificate for localhost/127.0.0.1, made by openssl in a temp dir.
import { ensureNginx } from "./_nginx.ts";

/** Paths and PEM text of a fresh key pair; `dir` is removed by dispose. */
export interface SelfSigned extends AsyncDisposable {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** Make a self-signed certificate valid for localhost, 127.0.0.1 and ::1. */
export async function selfSigned(): Promise<SelfSigned> {
  await ensureNginx(); // installs openssl too, when missing
  const dir = await Deno.makeTempDir({ prefix: "dback-tls-" });
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const r = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`openssl failed: ${new TextDecoder().decode(r.stderr)}`);
  return {
    dir,
    certFile,
    keyFile,
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}
