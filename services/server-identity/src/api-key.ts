import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { newId } from "@cls/db";

// `cls_<key_id>_<secret>`: the key id is `key_` and 32 hex digits, the secret 32 random bytes
// in base64url (43 characters, which may themselves contain `_`, hence the anchored pattern).
const API_KEY_PATTERN = /^cls_(key_[0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/** A new API key: its id, the secret and the string the customer is shown once. */
export function newApiKey(): { keyId: string; secret: string; apiKey: string } {
  const keyId = newId("key");
  const secret = randomBytes(32).toString("base64url");
  return { keyId, secret, apiKey: `cls_${keyId}_${secret}` };
}

/** The key id and secret of an API key string; undefined when it cannot be one. */
export function parseApiKey(input: string): { keyId: string; secret: string } | undefined {
  if (input.length > 100) return undefined;
  const match = API_KEY_PATTERN.exec(input.trim());
  return match ? { keyId: match[1]!, secret: match[2]! } : undefined;
}

/** What is stored instead of the secret: SHA-256 hex. */
export function hashApiKeySecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Compares two SHA-256 hex digests in constant time. */
export function sameSecretHash(a: string, b: string): boolean {
  const left = Buffer.from(a, "hex");
  const right = Buffer.from(b, "hex");
  return left.length === 32 && right.length === 32 && timingSafeEqual(left, right);
}
