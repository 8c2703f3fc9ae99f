import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { SignJWT, jwtVerify } from "jose";
import { UnauthenticatedError } from "@cls/errors";
import { keyIdOf, rawPublicKey } from "@cls/lease";

const AUDIENCE = "cls-internal";
const TOKEN_LIFETIME_S = 120;
const CLOCK_TOLERANCE_S = 30;
const ACTOR_PATTERN = /^(staff|service):[\x21-\x7e]{1,100}$/;

/**
 * How vendor tools and services prove who they are on the internal port: each holds its own
 * Ed25519 key and signs a two-minute token naming itself (`staff:alice@vendor.example`,
 * `service:pool`). No shared secret; the audit trail records the proven actor. Internal
 * tokens use the wall clock, whatever clock the domain runs on.
 */
export interface InternalSigner {
  readonly actor: string;
  token(): Promise<string>;
}

export function createInternalSigner(actor: string, privateKeyPem: string): InternalSigner {
  if (!ACTOR_PATTERN.test(actor)) throw new Error(`actor ${JSON.stringify(actor)} must look like staff:<name> or service:<name>`);
  const privateKey = createPrivateKey(privateKeyPem);
  const kid = keyIdOf(rawPublicKey(createPublicKey(privateKey)));
  let cached: { token: string; renewAt: number } | undefined;
  return {
    actor,
    async token() {
      const now = Date.now();
      if (cached && cached.renewAt > now) return cached.token;
      const issuedAt = Math.floor(now / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: "EdDSA", kid })
        .setSubject(actor)
        .setAudience(AUDIENCE)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + TOKEN_LIFETIME_S)
        .sign(privateKey);
      cached = { token, renewAt: now + (TOKEN_LIFETIME_S / 2) * 1000 };
      return token;
    },
  };
}

/** One trusted internal caller: its actor name and public key. */
export interface TrustedCaller {
  actor: string;
  publicKeyPem: string;
}

/**
 * Reads the trusted-callers file: a JSON object mapping each actor to its PEM public key, or
 * to a list of them while a key is being rotated, e.g.
 * `{"staff:alice@vendor.example": "-----BEGIN PUBLIC KEY-----…", "service:pool": ["…old", "…new"]}`.
 */
export function parseTrustedCallers(json: string): TrustedCaller[] {
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("trusted callers must be a JSON object of actor → PEM public key");
  return Object.entries(parsed as Record<string, unknown>).flatMap(([actor, value]) => {
    if (!ACTOR_PATTERN.test(actor)) throw new Error(`trusted caller ${JSON.stringify(actor)} must look like staff:<name> or service:<name>`);
    const pems = Array.isArray(value) ? value : [value];
    if (pems.length === 0 || pems.some((pem) => typeof pem !== "string")) {
      throw new Error(`trusted caller ${actor}: the value must be a PEM public key, or a list of them`);
    }
    return (pems as string[]).map((publicKeyPem) => ({ actor, publicKeyPem }));
  });
}

export interface InternalVerifier {
  /** The proven actor of an internal call; throws UnauthenticatedError otherwise. */
  verify(token: string): Promise<string>;
}

export function createInternalVerifier(trusted: readonly TrustedCaller[]): InternalVerifier {
  const byKid = new Map<string, { actor: string; key: KeyObject }>();
  for (const caller of trusted) {
    const key = createPublicKey(caller.publicKeyPem);
    byKid.set(keyIdOf(rawPublicKey(key)), { actor: caller.actor, key });
  }
  return {
    async verify(token) {
      let actor: string | undefined;
      try {
        const { payload } = await jwtVerify(
          token,
          (header) => {
            const entry = header.kid ? byKid.get(header.kid) : undefined;
            if (!entry) throw new UnauthenticatedError("internal credential signed by an untrusted key");
            actor = entry.actor;
            return entry.key;
          },
          // Callers' clocks (a vendor's laptop) may run a little apart from the pod's.
          { audience: AUDIENCE, algorithms: ["EdDSA"], requiredClaims: ["exp", "sub"], maxTokenAge: `${TOKEN_LIFETIME_S + 60}s`, clockTolerance: CLOCK_TOLERANCE_S },
        );
        if (payload.sub !== actor) throw new UnauthenticatedError("internal credential names another actor than its key's");
        return actor!;
      } catch (error) {
        if (error instanceof UnauthenticatedError) throw error;
        throw new UnauthenticatedError("internal credential is not valid");
      }
    },
  };
}
