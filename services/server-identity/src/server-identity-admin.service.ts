import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { listAudit, recordAudit } from "@cls/audit";
import { revocationSubject, type RevocationList, type TokenIssuer } from "@cls/auth";
import type { Clock } from "@cls/clock";
import { NotFoundError, UnavailableError } from "@cls/errors";
import type { ServerIdentityAdminService } from "@cls/proto";
import { actorOf } from "@cls/server";
import { pageSize, requireId, requireText } from "@cls/validation";
import { newApiKey, hashApiKeySecret } from "./api-key.js";
import { toApiKeyMessage } from "./api-key.mapping.js";
import { findApiKey, insertApiKey, listAccountApiKeys, markApiKeyRevoked } from "./api-key.repository.js";
import type { ApiKeyTable, ServerIdentityDatabase } from "./database.js";
import { requireTtlHours, type ServerManagement } from "./server-management.js";
import { toServerMessage } from "./server.mapping.js";
import { tokenKeySetJson } from "./token-keys.js";

export interface ServerIdentityAdminDeps {
  db: Kysely<ServerIdentityDatabase>;
  clock: Clock;
  logger: Logger;
  tokenIssuer: TokenIssuer;
  revocations: RevocationList;
  servers: ServerManagement;
}

/** Internal: enrollment codes, the servers of an account, API keys, revocation, audit and the token keys. */
export function createServerIdentityAdminService(deps: ServerIdentityAdminDeps): ServiceImpl<typeof ServerIdentityAdminService> {
  const { db, clock } = deps;
  let keySet: Promise<string> | undefined;

  return {
    async createEnrollmentCode(req, ctx) {
      const accountId = requireId("account_id", req.accountId, "acc");
      const poolId = requireId("pool_id", req.poolId, "pool");
      const ttlHours = requireTtlHours(req.ttlHours);
      const { enrollmentCode, expiresAt } = await deps.servers.createEnrollmentCode({ accountId, poolId, ttlHours, actor: actorOf(ctx) });
      return { enrollmentCode, expiresAt: timestampFromDate(expiresAt) };
    },

    async listServers(req) {
      const accountId = requireId("account_id", req.accountId, "acc");
      return { servers: (await deps.servers.listServers(accountId)).map(toServerMessage) };
    },

    async revokeServer(req, ctx) {
      const serverId = requireId("server_id", req.serverId, "srv");
      return { server: toServerMessage(await deps.servers.revokeServer(serverId, actorOf(ctx))) };
    },

    async getTokenKeys() {
      keySet ??= tokenKeySetJson(deps.tokenIssuer);
      return { jwksJson: await keySet };
    },

    /**
     * A new API key for a customer account (SPEC L14), shown once as `cls_<key_id>_<secret>`;
     * only the secret's SHA-256 is kept.
     *
     * The account id is accepted when it is well formed: accounts belong to the pool service,
     * which has no "get account" call, and `ListAccountPools` answers an empty list both for an
     * unknown account and for a new account without pools yet. Staff create keys for accounts
     * they have just created; a key for a mistyped account can do nothing (every call is
     * scoped to that empty account) and can be revoked.
     */
    async createApiKey(req, ctx) {
      const accountId = requireId("account_id", req.accountId, "acc");
      const name = requireText("name", req.name);
      const { keyId, secret, apiKey } = newApiKey();
      const now = clock.now();
      const row: ApiKeyTable = { key_id: keyId, account_id: accountId, name, secret_hash: hashApiKeySecret(secret), created_at: now, revoked_at: null };
      await db.transaction().execute(async (trx) => {
        await insertApiKey(trx, row);
        await recordAudit(trx, { actor: actorOf(ctx), action: "api_key.created", accountId, subject: keyId, detail: { key_id: keyId, name }, occurredAt: now });
      });
      return { apiKey: toApiKeyMessage(row), secret: apiKey };
    },

    async listApiKeys(req) {
      const accountId = requireId("account_id", req.accountId, "acc");
      return { apiKeys: (await listAccountApiKeys(db, accountId)).map(toApiKeyMessage) };
    },

    /**
     * Revokes a key: no new tokens from ExchangeApiKey, and tokens already issued stop on their
     * next call on every replica (revocation list). Idempotent, so a retry re-publishes it.
     */
    async revokeApiKey(req, ctx) {
      const keyId = requireId("key_id", req.keyId, "key");
      const now = clock.now();
      const key = await db.transaction().execute(async (trx) => {
        const found = await findApiKey(trx, keyId, { forUpdate: true });
        if (!found) throw new NotFoundError(`api key ${keyId}`);
        if (found.revoked_at) return found;
        await markApiKeyRevoked(trx, keyId, now);
        await recordAudit(trx, { actor: actorOf(ctx), action: "api_key.revoked", accountId: found.account_id, subject: keyId, detail: { key_id: keyId, name: found.name }, occurredAt: now });
        return { ...found, revoked_at: now };
      });
      try {
        await deps.revocations.revoke(revocationSubject({ kind: "customer", apiKeyId: keyId, accountId: key.account_id }));
      } catch (error) {
        deps.logger.warn({ err: error, key_id: keyId }, "api key revoked but not yet on the revocation list");
        throw new UnavailableError("the revocation is saved and the key gets no new tokens, but tokens already issued still work until they expire; retry RevokeApiKey");
      }
      return { apiKey: toApiKeyMessage(key) };
    },

    /** Enrollments, failed attempts, revocations, key rotations and API-key changes, newest first (SPEC L16). */
    async listAudit(req) {
      const accountId = req.accountId ? requireId("account_id", req.accountId, "acc") : undefined;
      return { entries: await listAudit(db, { ...(accountId ? { accountId } : {}), limit: pageSize("limit", req.limit, 100, 1_000) }) };
    },
  };
}
