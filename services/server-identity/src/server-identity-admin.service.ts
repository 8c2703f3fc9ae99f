import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { recordAudit } from "@cls/audit";
import type { TokenIssuer } from "@cls/auth";
import { HOUR_MS, type Clock } from "@cls/clock";
import { InvalidArgumentError, NotFoundError, UnavailableError } from "@cls/errors";
import { recordEvents, type OutboxRelay } from "@cls/outbox";
import type { AllocationAdminService, PoolAdminService, ServerIdentityAdminService } from "@cls/proto";
import { actorOf } from "@cls/server";
import { requireId } from "@cls/validation";
import type { ServerIdentityDatabase, ServerTable } from "./database.js";
import { NEIGHBOUR_TIMEOUT_MS, isRetryableFailure } from "./dependency.js";
import { hashEnrollmentCode, newEnrollmentCode } from "./enrollment-code.js";
import { insertEnrollmentCode } from "./enrollment.repository.js";
import { findServer, listAccountServers, markServerRevoked } from "./server.repository.js";
import { toServerMessage } from "./server.mapping.js";
import { tokenKeySetJson } from "./token-keys.js";

export interface ServerIdentityAdminDeps {
  db: Kysely<ServerIdentityDatabase>;
  clock: Clock;
  logger: Logger;
  tokenIssuer: TokenIssuer;
  allocation: Client<typeof AllocationAdminService>;
  pools: Client<typeof PoolAdminService>;
  outbox: OutboxRelay;
}

const DEFAULT_CODE_TTL_HOURS = 4;
const MAX_CODE_TTL_HOURS = 72;

function requireTtlHours(value: number): number {
  if (value === 0) return DEFAULT_CODE_TTL_HOURS;
  if (!Number.isInteger(value) || value < 1 || value > MAX_CODE_TTL_HOURS) {
    throw new InvalidArgumentError("ttl_hours", `must be from 1 to ${MAX_CODE_TTL_HOURS} hours (0 means ${DEFAULT_CODE_TTL_HOURS})`);
  }
  return value;
}

/** Internal: enrollment codes, the servers of an account, revocation and the token keys. */
export function createServerIdentityAdminService(deps: ServerIdentityAdminDeps): ServiceImpl<typeof ServerIdentityAdminService> {
  const { db, clock } = deps;
  let keySet: Promise<string> | undefined;

  /** The pool, if it exists and belongs to the account; otherwise not_found either way. */
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

  /** Stops the server's licences in allocation; idempotent, so a retried revocation is safe. */
  async function applyRevocation(server: ServerTable): Promise<void> {
    try {
      await deps.allocation.applyServerRevocation({ serverId: server.server_id }, { timeoutMs: NEIGHBOUR_TIMEOUT_MS });
    } catch (error) {
      deps.logger.warn({ err: error, server_id: server.server_id }, "server revoked but allocation has not applied it yet");
      throw new UnavailableError("the revocation is saved and the server can no longer authenticate, but its licences are not released yet; retry RevokeServer");
    }
  }

  async function revoke(serverId: string, ctx: HandlerContext): Promise<ServerTable> {
    const now = clock.now();
    return db.transaction().execute(async (trx) => {
      const server = await findServer(trx, serverId, { forUpdate: true });
      if (!server) throw new NotFoundError(`server ${serverId}`);
      if (server.state === "revoked") return server;
      await markServerRevoked(trx, serverId, now);
      const detail = { server_id: serverId, name: server.name };
      await recordAudit(trx, { actor: actorOf(ctx), action: "server.revoked", accountId: server.account_id, subject: serverId, detail, occurredAt: now });
      await recordEvents(trx, [{ accountId: server.account_id, type: "server.revoked", data: detail, occurredAt: now }]);
      return { ...server, state: "revoked", revoked_at: now };
    });
  }

  return {
    async createEnrollmentCode(req, ctx) {
      const accountId = requireId("account_id", req.accountId, "acc");
      const poolId = requireId("pool_id", req.poolId, "pool");
      const ttlHours = requireTtlHours(req.ttlHours);
      await requireAccountPool(accountId, poolId);
      const code = newEnrollmentCode();
      const codeHash = hashEnrollmentCode(code);
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + ttlHours * HOUR_MS);
      await db.transaction().execute(async (trx) => {
        await insertEnrollmentCode(trx, { code_hash: codeHash, account_id: accountId, pool_id: poolId, created_at: now, expires_at: expiresAt, used_at: null, used_by_server_id: null });
        await recordAudit(trx, {
          actor: actorOf(ctx),
          action: "enrollment_code.created",
          accountId,
          subject: codeHash,
          detail: { pool_id: poolId, expires_at: expiresAt.toISOString() },
          occurredAt: now,
        });
      });
      return { enrollmentCode: code, expiresAt: timestampFromDate(expiresAt) };
    },

    async listServers(req) {
      const accountId = requireId("account_id", req.accountId, "acc");
      return { servers: (await listAccountServers(db, accountId)).map(toServerMessage) };
    },

    async revokeServer(req, ctx) {
      const serverId = requireId("server_id", req.serverId, "srv");
      const server = await revoke(serverId, ctx);
      deps.outbox.kick();
      await applyRevocation(server);
      return { server: toServerMessage(server) };
    },

    async getTokenKeys() {
      keySet ??= tokenKeySetJson(deps.tokenIssuer);
      return { jwksJson: await keySet };
    },
  };
}
