import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { recordAudit } from "@cls/audit";
import { revocationSubject, type RevocationList } from "@cls/auth";
import { HOUR_MS, type Clock } from "@cls/clock";
import { InvalidArgumentError, NotFoundError, UnavailableError } from "@cls/errors";
import { recordEvents, type OutboxRelay } from "@cls/outbox";
import type { AllocationAdminService, PoolAdminService } from "@cls/proto";
import type { ServerIdentityDatabase, ServerTable } from "./database.js";
import { NEIGHBOUR_TIMEOUT_MS, isRetryableFailure } from "./dependency.js";
import { hashEnrollmentCode, newEnrollmentCode } from "./enrollment-code.js";
import { insertEnrollmentCode } from "./enrollment.repository.js";
import { findServer, listAccountServers, markServerRevoked } from "./server.repository.js";

export interface ServerManagementDeps {
  db: Kysely<ServerIdentityDatabase>;
  clock: Clock;
  logger: Logger;
  allocation: Client<typeof AllocationAdminService>;
  pools: Client<typeof PoolAdminService>;
  outbox: OutboxRelay;
  revocations: RevocationList;
}

/**
 * What vendor staff (internal API) and customers (AccountService, SPEC L14) both do to an
 * account's servers. Callers resolve the account and the audit actor; this does the rest.
 */
export interface ServerManagement {
  createEnrollmentCode(input: { accountId: string; poolId: string; ttlHours: number; actor: string }): Promise<{ enrollmentCode: string; expiresAt: Date }>;
  listServers(accountId: string): Promise<ServerTable[]>;
  /**
   * Revokes a server: state, audit and `server.revoked` event in one transaction, then the
   * revocation list (its tokens stop on their next call, on every replica) and allocation
   * (its licences are freed). Idempotent, so a retry after `unavailable` completes it.
   * With `accountId`, a server of another account is `not_found`, exactly like a missing one.
   */
  revokeServer(serverId: string, actor: string, options?: { accountId?: string }): Promise<ServerTable>;
}

const DEFAULT_CODE_TTL_HOURS = 4;
const MAX_CODE_TTL_HOURS = 72;

/** The lifetime of a new enrollment code: 0 means the default (SPEC L11: expires in hours). */
export function requireTtlHours(value: number): number {
  if (value === 0) return DEFAULT_CODE_TTL_HOURS;
  if (!Number.isInteger(value) || value < 1 || value > MAX_CODE_TTL_HOURS) {
    throw new InvalidArgumentError("ttl_hours", `must be from 1 to ${MAX_CODE_TTL_HOURS} hours (0 means ${DEFAULT_CODE_TTL_HOURS})`);
  }
  return value;
}

export function createServerManagement(deps: ServerManagementDeps): ServerManagement {
  const { db, clock } = deps;

  /**
   * The pool, if it exists and belongs to the account; otherwise not_found either way, with a
   * message made only of what the caller sent, so another account's pool is indistinguishable
   * from a missing one (SPEC L11).
   */
  async function requireAccountPool(accountId: string, poolId: string): Promise<void> {
    let owner: string | undefined;
    try {
      const { pool } = await deps.pools.getPool({ poolId }, { timeoutMs: NEIGHBOUR_TIMEOUT_MS });
      owner = pool?.accountId;
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.NotFound) owner = undefined;
      else if (isRetryableFailure(error)) throw new UnavailableError("the pool service is unavailable; retry shortly");
      else throw error;
    }
    if (owner !== accountId) throw new NotFoundError(`pool ${poolId} of account ${accountId}`);
  }

  /** The revocation list and allocation, both idempotent; a failure of either asks for a retry. */
  async function propagateRevocation(server: ServerTable): Promise<void> {
    const [listed, released] = await Promise.allSettled([
      deps.revocations.revoke(revocationSubject({ kind: "server", serverId: server.server_id, accountId: server.account_id })),
      deps.allocation.applyServerRevocation({ serverId: server.server_id }, { timeoutMs: NEIGHBOUR_TIMEOUT_MS }),
    ]);
    if (listed.status === "rejected" || released.status === "rejected") {
      const cause = listed.status === "rejected" ? listed.reason : (released as PromiseRejectedResult).reason;
      deps.logger.warn({ err: cause, server_id: server.server_id }, "server revoked but the revocation has not reached every service yet");
      throw new UnavailableError(
        "the revocation is saved and the server can no longer authenticate, but its current token or licences are not stopped everywhere yet; retry the revocation",
      );
    }
  }

  return {
    async createEnrollmentCode({ accountId, poolId, ttlHours, actor }) {
      await requireAccountPool(accountId, poolId);
      const code = newEnrollmentCode();
      const codeHash = hashEnrollmentCode(code);
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + ttlHours * HOUR_MS);
      await db.transaction().execute(async (trx) => {
        await insertEnrollmentCode(trx, { code_hash: codeHash, account_id: accountId, pool_id: poolId, created_at: now, expires_at: expiresAt, used_at: null, used_by_server_id: null });
        await recordAudit(trx, {
          actor,
          action: "enrollment_code.created",
          accountId,
          subject: codeHash,
          detail: { pool_id: poolId, expires_at: expiresAt.toISOString() },
          occurredAt: now,
        });
      });
      return { enrollmentCode: code, expiresAt };
    },

    listServers(accountId) {
      return listAccountServers(db, accountId);
    },

    async revokeServer(serverId, actor, options = {}) {
      const now = clock.now();
      const server = await db.transaction().execute(async (trx) => {
        const found = await findServer(trx, serverId, { forUpdate: true });
        if (!found || (options.accountId !== undefined && found.account_id !== options.accountId)) throw new NotFoundError(`server ${serverId}`);
        if (found.state === "revoked") return found;
        await markServerRevoked(trx, serverId, now);
        const detail = { server_id: serverId, name: found.name };
        await recordAudit(trx, { actor, action: "server.revoked", accountId: found.account_id, subject: serverId, detail, occurredAt: now });
        await recordEvents(trx, [{ accountId: found.account_id, type: "server.revoked", data: detail, occurredAt: now }]);
        return { ...found, state: "revoked" as const, revoked_at: now };
      });
      deps.outbox.kick();
      await propagateRevocation(server);
      return server;
    },
  };
}
