import { createPublicKey, type KeyObject } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import type { Clock } from "@cls/clock";
import { UnauthenticatedError } from "@cls/errors";
import { keyIdOf, privateKeyFromPem, rawPublicKey } from "@cls/lease";
import type { Caller } from "./caller.js";

const ISSUER = "cls.server-identity";
const AUDIENCE = "cls";

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export interface TokenIssuer {
  issueServerToken(serverId: string, accountId: string): Promise<IssuedToken>;
  issueCustomerToken(apiKeyId: string, accountId: string): Promise<IssuedToken>;
  /** PEM of the public key that verifies the tokens this issuer makes. */
  readonly publicKeyPem: string;
}

/** Issues short-lived EdDSA access tokens for enrolled servers. */
export function createTokenIssuer(privateKeyPem: string, options: { clock: Clock; ttlMs: number }): TokenIssuer {
  const privateKey = privateKeyFromPem(privateKeyPem);
  const publicKey = createPublicKey(privateKey);
  const kid = keyIdOf(rawPublicKey(publicKey));
  async function issue(kind: Caller["kind"], subject: string, accountId: string): Promise<IssuedToken> {
    const nowSeconds = Math.floor(options.clock.now().getTime() / 1000);
    const expiresSeconds = nowSeconds + Math.floor(options.ttlMs / 1000);
    const token = await new SignJWT({ acc: accountId, knd: kind })
      .setProtectedHeader({ alg: "EdDSA", kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(subject)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(expiresSeconds)
      .sign(privateKey);
    return { token, expiresAt: new Date(expiresSeconds * 1000) };
  }
  return {
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
    issueServerToken: (serverId, accountId) => issue("server", serverId, accountId),
    issueCustomerToken: (apiKeyId, accountId) => issue("customer", apiKeyId, accountId),
  };
}

export interface TokenVerifier {
  verify(token: string): Promise<Caller>;
}

/** Splits a file of one or more PEM public keys (several during a key rotation). */
export function parsePublicKeysPem(pem: string): KeyObject[] {
  const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new Error("no PEM public key found");
  return blocks.map((block) => createPublicKey(block));
}

/** Verifies access tokens locally, with no call to the identity service. */
/** Most verified tokens remembered; a server re-uses its token for minutes, so few are live. */
const VERIFIED_CACHE_SIZE = 10_000;

/**
 * Verifies access tokens locally, with no call to the identity service. A token that
 * verified is remembered until it expires, so each server's token costs one signature check,
 * not one per call; expiry is still judged on every call.
 */
export function createTokenVerifier(publicKeys: readonly KeyObject[], options: { clock: Clock }): TokenVerifier {
  const byKid = new Map(publicKeys.map((key) => [keyIdOf(rawPublicKey(key)), key]));
  const verified = new Map<string, { caller: Caller; expiresAtMs: number }>();

  async function verifySignature(token: string): Promise<{ caller: Caller; expiresAtMs: number }> {
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid ? byKid.get(header.kid) : undefined;
          if (!key) throw new UnauthenticatedError("access token signed by an unknown key");
          return key;
        },
        { issuer: ISSUER, audience: AUDIENCE, algorithms: ["EdDSA"], currentDate: options.clock.now(), requiredClaims: ["exp", "sub"] },
      );
      if (typeof payload.sub !== "string" || typeof payload.acc !== "string") {
        throw new UnauthenticatedError("access token is missing its subject");
      }
      const expiresAtMs = payload.exp! * 1000;
      if (payload.knd === "server") return { caller: { kind: "server", serverId: payload.sub, accountId: payload.acc }, expiresAtMs };
      if (payload.knd === "customer") return { caller: { kind: "customer", apiKeyId: payload.sub, accountId: payload.acc }, expiresAtMs };
      throw new UnauthenticatedError("access token names an unknown kind of caller");
    } catch (error) {
      if (error instanceof UnauthenticatedError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new UnauthenticatedError("access token expired: authenticate again");
      throw new UnauthenticatedError("access token is not valid");
    }
  }

  return {
    async verify(token) {
      const known = verified.get(token);
      if (known) {
        if (options.clock.now().getTime() < known.expiresAtMs) return known.caller;
        verified.delete(token);
        throw new UnauthenticatedError("access token expired: authenticate again");
      }
      const fresh = await verifySignature(token);
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, fresh);
      return fresh.caller;
    },
  };
}
