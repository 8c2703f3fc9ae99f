import { timingSafeEqual, verify, type KeyObject } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { recordAudit } from "@cls/audit";
import type { TokenIssuer } from "@cls/auth";
import type { Clock } from "@cls/clock";
import { newId } from "@cls/db";
import { AlreadyExistsError, InvalidArgumentError, PermissionDeniedError, UnauthenticatedError, UnavailableError } from "@cls/errors";
import { keyIdOf, publicKeyFromRaw } from "@cls/lease";
import { recordEvents, type OutboxRelay } from "@cls/outbox";
import type { AllocationAdminService, AuthenticateRequest, RotateKeyRequest, ServerIdentityService } from "@cls/proto";
import { requireServerCaller } from "@cls/server";
import { requireId, requireText } from "@cls/validation";
import { hashApiKeySecret, parseApiKey, sameSecretHash } from "./api-key.js";
import { findApiKey } from "./api-key.repository.js";
import type { BruteForceGuard } from "./brute-force.js";
import { CHALLENGE_TTL_MS, challengeBytes, newNonce, parseChallenge } from "./challenge.js";
import { deleteExpiredChallenges, findChallenge, insertChallenge, markChallengeUsed } from "./challenge.repository.js";
import type { ChallengeTable, ServerIdentityDatabase, ServerTable } from "./database.js";
import { NEIGHBOUR_TIMEOUT_MS, isRetryableFailure } from "./dependency.js";
import { requireEd25519PublicKey } from "./ed25519-key.js";
import { hashEnrollmentCode, parseEnrollmentCode } from "./enrollment-code.js";
import { claimEnrollmentCode, findEnrollmentCode } from "./enrollment.repository.js";
import { findServer, insertServer, updateServerKey } from "./server.repository.js";
import { toServerMessage } from "./server.mapping.js";

export interface ServerIdentityDeps {
  db: Kysely<ServerIdentityDatabase>;
  clock: Clock;
  logger: Logger;
  tokenIssuer: TokenIssuer;
  allocation: Client<typeof AllocationAdminService>;
  outbox: OutboxRelay;
  /** Limits failed enrollments, API-key exchanges and sign-ins (issue 4, SPEC L13). */
  guard: BruteForceGuard;
}

const CODE_NOT_VALID = "enrollment code is not valid or has expired; ask for a new one";
const SERVER_NOT_ENROLLED = "server is not enrolled or has been revoked; enroll it again with a new enrollment code";
const CHALLENGE_NOT_VALID = "challenge is not valid for this server; request a new one with CreateChallenge";
const CHALLENGE_USED = "challenge has already been used; request a new one with CreateChallenge";
const CHALLENGE_EXPIRED = "challenge has expired; request a new one and sign it within 60 seconds";
/** One answer for an unknown, revoked or wrong API key, so none can be told apart. */
const API_KEY_NOT_VALID = "API key is not valid; check it, or ask for a new one";
/** Compared against when the key id is unknown, so that case costs the same as a wrong secret. */
const NO_SUCH_HASH = "0".repeat(64);
/** Who failed attempts are recorded as: nobody proved an identity, and no address is kept (SPEC L13). */
const ANONYMOUS = "anonymous";

/** A short reason for a failed sign-in, for the audit trail. */
function failureReason(error: UnauthenticatedError): string {
  if (error.message === CHALLENGE_USED) return "challenge_used";
  if (error.message === CHALLENGE_EXPIRED) return "challenge_expired";
  if (error.message.startsWith("signature does not verify")) return "bad_signature";
  return "challenge_not_valid";
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function signatureVerifies(publicKey: KeyObject | Uint8Array, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, bytes, publicKey instanceof Uint8Array ? publicKeyFromRaw(publicKey) : publicKey, signature);
  } catch {
    return false;
  }
}

/**
 * Public: how an EdgeVis Server enrolls and proves who it is, and how a customer turns an API
 * key into an access token (SPEC L11, L14). Every method is anonymous except RotateKey, which
 * the server calls with its current access token.
 */
export function createServerIdentityService(deps: ServerIdentityDeps): ServiceImpl<typeof ServerIdentityService> {
  const { db, clock } = deps;

  /** Tells apart a code that was used from one that never worked, after a failed claim. */
  async function refuseCode(trx: Kysely<ServerIdentityDatabase>, codeHash: string): Promise<never> {
    const code = await findEnrollmentCode(trx, codeHash);
    if (code?.used_at) throw new AlreadyExistsError("enrollment code has already been used; each code enrolls one server, ask for a new one");
    throw new UnauthenticatedError(CODE_NOT_VALID);
  }

  async function bindToPool(server: Pick<ServerTable, "server_id" | "account_id" | "pool_id">): Promise<void> {
    try {
      await deps.allocation.bindServer(
        { serverId: server.server_id, accountId: server.account_id, poolId: server.pool_id },
        { timeoutMs: NEIGHBOUR_TIMEOUT_MS },
      );
    } catch (error) {
      if (isRetryableFailure(error)) {
        deps.logger.warn({ err: error, server_id: server.server_id }, "enrollment rolled back: allocation unavailable");
        throw new UnavailableError("enrollment could not be completed right now; the code was not used, retry shortly");
      }
      throw new Error("allocation refused to bind an enrolling server", { cause: error });
    }
  }

  /**
   * Audits a failed credential check (issue 4: brute force is audited). The detail never holds
   * the code, key or secret that was tried, and nothing identifies the caller's address.
   * Bounded by the brute-force limits: refused attempts are not recorded one by one.
   */
  async function recordFailure(record: { action: string; accountId: string | null; subject: string; detail: Record<string, unknown> }): Promise<void> {
    try {
      await recordAudit(db, { actor: ANONYMOUS, occurredAt: clock.now(), ...record });
    } catch (error) {
      deps.logger.warn({ err: error, action: record.action }, "could not audit a failed attempt");
    }
  }

  async function recordFailedEnrollment(codeHash: string): Promise<void> {
    const code = await findEnrollmentCode(db, codeHash).catch(() => undefined);
    const reason = !code ? "unknown_code" : code.used_at ? "code_already_used" : "code_expired";
    // A code that exists is named by its hash, which links to its creation; a guess is not named.
    await recordFailure({ action: "enrollment.failed", accountId: code?.account_id ?? null, subject: code ? codeHash : "enrollment_code", detail: { reason } });
  }

  async function enrollWithCode(codeHash: string, publicKey: Uint8Array, name: string): Promise<ServerTable> {
    const now = clock.now();
    const serverId = newId("srv");
    const offered = await findEnrollmentCode(db, codeHash);
    if (!offered || offered.expires_at <= now) throw new UnauthenticatedError(CODE_NOT_VALID);
    if (offered.used_at) await refuseCode(db, codeHash);
    // Bound before the code is claimed, and outside the transaction: a failed bind leaves the
    // code unused, and no transaction waits on another service (the embedded database has one
    // connection). A bind for a claim that then loses a race names a server nobody can sign in as.
    await bindToPool({ server_id: serverId, account_id: offered.account_id, pool_id: offered.pool_id });
    const server = await db.transaction().execute(async (trx) => {
      const claimed = await claimEnrollmentCode(trx, codeHash, serverId, now);
      if (!claimed) return refuseCode(trx, codeHash);
      const row: ServerTable = {
        server_id: serverId,
        account_id: claimed.account_id,
        pool_id: claimed.pool_id,
        name,
        public_key: publicKey,
        state: "active",
        enrolled_at: now,
        revoked_at: null,
        key_rotated_at: null,
      };
      await insertServer(trx, row);
      const detail = { server_id: serverId, name, pool_id: row.pool_id };
      await recordAudit(trx, { actor: `server:${serverId}`, action: "server.enrolled", accountId: row.account_id, subject: serverId, detail, occurredAt: now });
      await recordEvents(trx, [{ accountId: row.account_id, type: "server.enrolled", data: detail, occurredAt: now }]);
      return row;
    });
    deps.outbox.kick();
    return server;
  }

  /** The challenge named by the signed bytes, if it was issued to this server; unauthenticated otherwise. */
  async function findServerChallenge(serverId: string, req: Pick<AuthenticateRequest | RotateKeyRequest, "challenge" | "signature">): Promise<ChallengeTable> {
    const parsed = parseChallenge(req.challenge);
    if (!parsed) throw new UnauthenticatedError("challenge is malformed: sign and send back the exact bytes CreateChallenge returned");
    if (req.signature.length !== 64) throw new UnauthenticatedError("signature must be the 64-byte Ed25519 signature of the challenge");
    const challenge = await findChallenge(db, parsed.challengeId);
    if (!challenge || challenge.server_id !== serverId || !sameText(challenge.nonce, parsed.nonce)) {
      throw new UnauthenticatedError(CHALLENGE_NOT_VALID);
    }
    return challenge;
  }

  /** Single use and 60 seconds, by the service's clock (SPEC L11: no replay). */
  function requireUsable(challenge: ChallengeTable, now: Date): void {
    if (challenge.used_at) throw new UnauthenticatedError(CHALLENGE_USED);
    if (challenge.expires_at <= now) throw new UnauthenticatedError(CHALLENGE_EXPIRED);
  }

  async function signIn(req: AuthenticateRequest, serverId: string, challenge: ChallengeTable) {
    const now = clock.now();
    requireUsable(challenge, now);
    const server = await findServer(db, serverId);
    if (!server) throw new UnauthenticatedError(CHALLENGE_NOT_VALID);
    if (!signatureVerifies(server.public_key, req.challenge, req.signature)) {
      throw new UnauthenticatedError("signature does not verify with this server's current key; sign the challenge with that private key");
    }
    // Only the key holder learns that the server is revoked.
    if (server.state !== "active") throw new PermissionDeniedError("server revoked");
    if (!(await markChallengeUsed(db, challenge.challenge_id, now))) throw new UnauthenticatedError(CHALLENGE_USED);
    const issued = await deps.tokenIssuer.issueServerToken(server.server_id, server.account_id);
    return { accessToken: issued.token, expiresAt: timestampFromDate(issued.expiresAt) };
  }

  return {
    async enroll(req) {
      const code = parseEnrollmentCode("enrollment_code", req.enrollmentCode);
      requireEd25519PublicKey("public_key", req.publicKey);
      const name = requireText("server_name", req.serverName);
      const codeHash = hashEnrollmentCode(code);
      // Only well-formed requests reach the limits: malformed input is refused without counting or writing.
      const attempt = await deps.guard.enrollment(codeHash);
      try {
        const server = await enrollWithCode(codeHash, req.publicKey, name);
        await attempt.refund();
        return { server: toServerMessage(server) };
      } catch (error) {
        if (error instanceof UnauthenticatedError || error instanceof AlreadyExistsError) await recordFailedEnrollment(codeHash);
        else await attempt.refund();
        throw error;
      }
    },

    async createChallenge(req) {
      const serverId = requireId("server_id", req.serverId, "srv");
      const server = await findServer(db, serverId);
      if (!server || server.state !== "active") throw new UnauthenticatedError(SERVER_NOT_ENROLLED);
      await deps.guard.challenge(serverId);
      const now = clock.now();
      const challenge = { challenge_id: newId("chl"), server_id: serverId, nonce: newNonce(), expires_at: new Date(now.getTime() + CHALLENGE_TTL_MS), used_at: null };
      await deleteExpiredChallenges(db, serverId, now);
      await insertChallenge(db, challenge);
      return { challenge: challengeBytes(challenge.challenge_id, challenge.nonce), expiresAt: timestampFromDate(challenge.expires_at) };
    },

    async authenticate(req) {
      const serverId = requireId("server_id", req.serverId, "srv");
      const challenge = await findServerChallenge(serverId, req);
      // Counted per server only once the challenge is one this server was really given, so
      // random server ids cannot fill the counters.
      const attempt = await deps.guard.authenticate(serverId);
      try {
        const response = await signIn(req, serverId, challenge);
        await attempt.refund();
        return response;
      } catch (error) {
        if (error instanceof UnauthenticatedError) {
          const server = await findServer(db, serverId).catch(() => undefined);
          await recordFailure({ action: "server.authentication_failed", accountId: server?.account_id ?? null, subject: serverId, detail: { server_id: serverId, reason: failureReason(error) } });
        } else {
          await attempt.refund();
        }
        throw error;
      }
    },

    async exchangeApiKey(req) {
      const parsed = parseApiKey(req.apiKey);
      if (!parsed) throw new UnauthenticatedError(API_KEY_NOT_VALID);
      const attempt = await deps.guard.apiKeyExchange(parsed.keyId);
      let key;
      try {
        key = await findApiKey(db, parsed.keyId);
      } catch (error) {
        await attempt.refund();
        throw error;
      }
      // Always one constant-time comparison, whether or not the key id exists.
      const secretMatches = sameSecretHash(hashApiKeySecret(parsed.secret), key?.secret_hash ?? NO_SUCH_HASH);
      if (!key || !secretMatches || key.revoked_at) {
        const reason = !key ? "unknown_key" : !secretMatches ? "wrong_secret" : "revoked_key";
        await recordFailure({ action: "api_key.exchange_failed", accountId: key?.account_id ?? null, subject: parsed.keyId, detail: { key_id: parsed.keyId, reason } });
        throw new UnauthenticatedError(API_KEY_NOT_VALID);
      }
      await attempt.refund();
      const issued = await deps.tokenIssuer.issueCustomerToken(key.key_id, key.account_id);
      return { accessToken: issued.token, expiresAt: timestampFromDate(issued.expiresAt), accountId: key.account_id };
    },

    /**
     * Replaces the calling server's key (SPEC L11: key rotation). The server proves it holds the
     * new private key by signing a fresh challenge with it; its current token (proof of the old
     * key) authorises the change. That token keeps working until it expires, so there is no
     * downtime; from now on only the new key signs challenges.
     */
    async rotateKey(req, ctx) {
      const caller = requireServerCaller(ctx);
      const newKey = requireEd25519PublicKey("new_public_key", req.newPublicKey);
      const challenge = await findServerChallenge(caller.serverId, req);
      const now = clock.now();
      requireUsable(challenge, now);
      if (!signatureVerifies(newKey, req.challenge, req.signature)) {
        throw new UnauthenticatedError("signature does not verify with new_public_key; sign the challenge with the new private key");
      }
      const server = await db.transaction().execute(async (trx) => {
        const current = await findServer(trx, caller.serverId, { forUpdate: true });
        if (!current || current.account_id !== caller.accountId || current.state !== "active") throw new PermissionDeniedError("server revoked");
        if (Buffer.from(current.public_key).equals(Buffer.from(req.newPublicKey))) {
          throw new InvalidArgumentError("new_public_key", "is the server's current key; generate a new key pair");
        }
        if (!(await markChallengeUsed(trx, challenge.challenge_id, now))) throw new UnauthenticatedError(CHALLENGE_USED);
        await updateServerKey(trx, caller.serverId, req.newPublicKey, now);
        const detail = { server_id: caller.serverId, old_key_id: keyIdOf(current.public_key), new_key_id: keyIdOf(req.newPublicKey) };
        await recordAudit(trx, { actor: `server:${caller.serverId}`, action: "server.key_rotated", accountId: current.account_id, subject: caller.serverId, detail, occurredAt: now });
        return { ...current, public_key: req.newPublicKey, key_rotated_at: now };
      });
      return { server: toServerMessage(server) };
    },
  };
}
