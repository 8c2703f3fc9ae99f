import { timingSafeEqual, verify } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { recordAudit } from "@cls/audit";
import type { TokenIssuer } from "@cls/auth";
import type { Clock } from "@cls/clock";
import { newId } from "@cls/db";
import { AlreadyExistsError, PermissionDeniedError, UnauthenticatedError, UnavailableError } from "@cls/errors";
import { publicKeyFromRaw } from "@cls/lease";
import { recordEvents, type OutboxRelay } from "@cls/outbox";
import type { AllocationAdminService, ServerIdentityService } from "@cls/proto";
import { requireId, requireText } from "@cls/validation";
import { CHALLENGE_TTL_MS, challengeBytes, newNonce, parseChallenge } from "./challenge.js";
import { deleteExpiredChallenges, findChallenge, insertChallenge, markChallengeUsed } from "./challenge.repository.js";
import type { ServerIdentityDatabase, ServerTable } from "./database.js";
import { NEIGHBOUR_TIMEOUT_MS, isRetryableFailure } from "./dependency.js";
import { requireEd25519PublicKey } from "./ed25519-key.js";
import { hashEnrollmentCode, parseEnrollmentCode } from "./enrollment-code.js";
import { claimEnrollmentCode, findEnrollmentCode } from "./enrollment.repository.js";
import { findServer, insertServer } from "./server.repository.js";
import { toServerMessage } from "./server.mapping.js";

export interface ServerIdentityDeps {
  db: Kysely<ServerIdentityDatabase>;
  clock: Clock;
  logger: Logger;
  tokenIssuer: TokenIssuer;
  allocation: Client<typeof AllocationAdminService>;
  outbox: OutboxRelay;
}

const CODE_NOT_VALID = "enrollment code is not valid or has expired; ask for a new one";
const SERVER_NOT_ENROLLED = "server is not enrolled or has been revoked; enroll it again with a new enrollment code";
const CHALLENGE_NOT_VALID = "challenge is not valid for this server; request a new one with CreateChallenge";

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function signatureVerifies(server: ServerTable, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, bytes, publicKeyFromRaw(server.public_key), signature);
  } catch {
    return false;
  }
}

/** Public: how an EdgeVis Server enrolls and proves who it is (SPEC L11). Every method is anonymous. */
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

  return {
    async enroll(req) {
      const code = parseEnrollmentCode("enrollment_code", req.enrollmentCode);
      requireEd25519PublicKey("public_key", req.publicKey);
      const name = requireText("server_name", req.serverName);
      const codeHash = hashEnrollmentCode(code);
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
          public_key: req.publicKey,
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
      return { server: toServerMessage(server) };
    },

    async createChallenge(req) {
      const serverId = requireId("server_id", req.serverId, "srv");
      const server = await findServer(db, serverId);
      if (!server || server.state !== "active") throw new UnauthenticatedError(SERVER_NOT_ENROLLED);
      const now = clock.now();
      const challenge = { challenge_id: newId("chl"), server_id: serverId, nonce: newNonce(), expires_at: new Date(now.getTime() + CHALLENGE_TTL_MS), used_at: null };
      await deleteExpiredChallenges(db, serverId, now);
      await insertChallenge(db, challenge);
      return { challenge: challengeBytes(challenge.challenge_id, challenge.nonce), expiresAt: timestampFromDate(challenge.expires_at) };
    },

    async authenticate(req) {
      const serverId = requireId("server_id", req.serverId, "srv");
      const parsed = parseChallenge(req.challenge);
      if (!parsed) throw new UnauthenticatedError("challenge is malformed: sign and send back the exact bytes CreateChallenge returned");
      if (req.signature.length !== 64) throw new UnauthenticatedError("signature must be the 64-byte Ed25519 signature of the challenge");
      const challenge = await findChallenge(db, parsed.challengeId);
      if (!challenge || challenge.server_id !== serverId || !sameText(challenge.nonce, parsed.nonce)) {
        throw new UnauthenticatedError(CHALLENGE_NOT_VALID);
      }
      if (challenge.used_at) throw new UnauthenticatedError("challenge has already been used; request a new one with CreateChallenge");
      const now = clock.now();
      if (challenge.expires_at <= now) throw new UnauthenticatedError("challenge has expired; request a new one and sign it within 60 seconds");
      const server = await findServer(db, serverId);
      if (!server) throw new UnauthenticatedError(CHALLENGE_NOT_VALID);
      if (!signatureVerifies(server, req.challenge, req.signature)) {
        throw new UnauthenticatedError("signature does not verify with the key this server enrolled with; sign the challenge with that private key");
      }
      // Only the key holder learns that the server is revoked.
      if (server.state !== "active") throw new PermissionDeniedError("server revoked");
      if (!(await markChallengeUsed(db, challenge.challenge_id, now))) {
        throw new UnauthenticatedError("challenge has already been used; request a new one with CreateChallenge");
      }
      const issued = await deps.tokenIssuer.issueServerToken(server.server_id, server.account_id);
      return { accessToken: issued.token, expiresAt: timestampFromDate(issued.expiresAt) };
    },
  };
}
