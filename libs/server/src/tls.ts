import { createHash, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TlsMaterial {
  cert: string;
  key: string;
}

/** The base64 SHA-256 of the certificate's public key (SPKI): what an EdgeVis Server pins. */
export function spkiPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

/**
 * The embedded default: a self-signed certificate for localhost, made on first start and
 * kept in `dir` so that its pin stays the same across restarts.
 */
export async function loadOrCreateSelfSignedTls(dir: string): Promise<TlsMaterial> {
  const certPath = join(dir, "tls.crt");
  const keyPath = join(dir, "tls.key");
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") };
  }
  // Imported here: a deployment with mounted certificates never loads the generator.
  const { generate } = await import("selfsigned");
  const made = await generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    notAfterDate: new Date(Date.now() + 5 * 365 * 24 * 3600 * 1000),
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(certPath, made.cert);
  writeFileSync(keyPath, made.private, { mode: 0o600 });
  return { cert: made.cert, key: made.private };
}
