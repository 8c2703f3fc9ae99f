import { createPublicKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenIssuer, type TokenIssuer } from "@cls/auth";
import { systemClock } from "@cls/clock";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { loadOrCreateSelfSignedTls, type TlsMaterial } from "@cls/server";

/** The keys and certificates a set of replicas shares, written to `dir`, and what the suite keeps to talk to them. */
export interface ReplicaCredentials {
  /** Environment naming the files. */
  env: Record<string, string>;
  tls: TlsMaterial;
  /** Mints access tokens the replicas accept (the suite plays server-identity). */
  tokens: TokenIssuer;
  /** A vendor staff identity trusted on the internal port. */
  staff: { actor: string; privateKeyPem: string };
}

export async function writeReplicaCredentials(dir: string): Promise<ReplicaCredentials> {
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const tls = await loadOrCreateSelfSignedTls(join(dir, "tls"));
  const tokens = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock: systemClock(), ttlMs: 60 * 60 * 1000 });
  const staff = { actor: "staff:fault-suite@vendor.example", privateKeyPem: generateEd25519PrivateKeyPem() };
  const staffPublicKeyPem = createPublicKey(staff.privateKeyPem).export({ format: "pem", type: "spki" }).toString();
  return {
    tls,
    tokens,
    staff,
    env: {
      TLS_CERT_FILE: join(dir, "tls", "tls.crt"),
      TLS_KEY_FILE: join(dir, "tls", "tls.key"),
      LEASE_SIGNING_KEY_FILE: file("lease.key", generateEd25519PrivateKeyPem()),
      TOKEN_VERIFY_KEYS_FILE: file("token-verify.pem", tokens.publicKeyPem),
      INTERNAL_TRUSTED_CALLERS_FILE: file("trusted-callers.json", JSON.stringify({ [staff.actor]: staffPublicKeyPem })),
      SERVICE_SIGNING_KEY_FILE: file("service.key", generateEd25519PrivateKeyPem()),
    },
  };
}
