/**
 * A TLS-terminating TCP proxy on loopback, as a load balancer in front of the
 * service would be: the browser speaks HTTPS to it, the bytes inside reach the
 * service's cleartext port unchanged. Needed because Auth0's MFA client
 * (auth0-auth-js, inside auth0-spa-js) builds its URLs as `https://<domain>`
 * whatever the domain says. The certificate is a throwaway self-signed one
 * made with the `openssl` command (present on Debian; .ci/run installs it when
 * missing); the browser is told to accept it.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer } from "node:tls";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TlsProxy {
  /** e.g. https://127.0.0.1:41234 (no trailing slash). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** undefined when `openssl` runs, else why the suite skips. */
export async function opensslSkipReason(): Promise<string | undefined> {
  try {
    await run("openssl", ["version"]);
    return undefined;
  } catch (error) {
    const reason = `the openssl command is not available (${(error as Error).message.split("\n")[0]}); .ci/run installs it`;
    process.stderr.write(`# skipping: ${reason}\n`);
    return reason;
  }
}

/** A fresh P-256 key and a one-day self-signed certificate for 127.0.0.1. */
export async function selfSignedCertificate(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), "token-service-tls-"));
  try {
    const keyPath = join(dir, "key.pem");
    const certPath = join(dir, "cert.pem");
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ]);
    return { key: await readFile(keyPath), cert: await readFile(certPath) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Listens on a free loopback port and forwards each TLS connection's plaintext to `targetPort`. */
export async function startTlsProxy(targetPort: number): Promise<TlsProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createTlsServer(await selfSignedCertificate(), (tls) => {
    const upstream = connect({ host: "127.0.0.1", port: targetPort });
    for (const socket of [tls, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => {
        tls.destroy();
        upstream.destroy();
      });
    }
    tls.pipe(upstream).pipe(tls);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `https://127.0.0.1:${address.port}`,
    port: address.port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
