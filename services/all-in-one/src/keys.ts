import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { generateEd25519PrivateKeyPem } from "@cls/lease";

/** Reads an Ed25519 private key, or makes one on first start and keeps it (embedded default). */
export function loadOrCreateEd25519Key(path: string): string {
  if (existsSync(path)) return readFileSync(path, "utf8");
  const pem = generateEd25519PrivateKeyPem();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, pem, { mode: 0o600 });
  return pem;
}

/** The staff identity the embedded default trusts on its internal port. */
export const LOCAL_STAFF_ACTOR = "staff:local-admin";
