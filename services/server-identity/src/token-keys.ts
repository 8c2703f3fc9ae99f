import { createPublicKey } from "node:crypto";
import { exportJWK } from "jose";
import type { TokenIssuer } from "@cls/auth";
import { keyIdOf, rawPublicKey } from "@cls/lease";

/** The JSON Web Key Set of the key that verifies access tokens, with the `kid` tokens carry. */
export async function tokenKeySetJson(issuer: TokenIssuer): Promise<string> {
  const publicKey = createPublicKey(issuer.publicKeyPem);
  const jwk = await exportJWK(publicKey);
  const key = { ...jwk, kid: keyIdOf(rawPublicKey(publicKey)), alg: "EdDSA", use: "sig" };
  return JSON.stringify({ keys: [key] });
}
