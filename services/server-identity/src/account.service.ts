import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { CustomerCaller } from "@cls/auth";
import { PermissionDeniedError } from "@cls/errors";
import type { AccountService } from "@cls/proto";
import { callerActor, requireCustomerCaller } from "@cls/server";
import { requireId } from "@cls/validation";
import { findApiKey } from "./api-key.repository.js";
import type { ServerIdentityDatabase } from "./database.js";
import { requireTtlHours, type ServerManagement } from "./server-management.js";
import { toServerMessage } from "./server.mapping.js";

export interface AccountServiceDeps {
  db: Kysely<ServerIdentityDatabase>;
  servers: ServerManagement;
}

/**
 * Public, for customers calling with an API-key access token: their own account's servers
 * (SPEC L14). Everything is scoped to the account in the token; another account's ids are
 * `not_found`, exactly like ids that do not exist (SPEC L11).
 */
export function createAccountService(deps: AccountServiceDeps): ServiceImpl<typeof AccountService> {
  /**
   * The customer caller, with its key checked here too: this service owns the keys, so a
   * revoked key stops at once even where the revocation list is not consulted.
   */
  async function requireActiveCustomer(ctx: HandlerContext): Promise<CustomerCaller> {
    const caller = requireCustomerCaller(ctx);
    const key = await findApiKey(deps.db, caller.apiKeyId);
    if (!key || key.revoked_at || key.account_id !== caller.accountId) throw new PermissionDeniedError("this API key has been revoked");
    return caller;
  }

  return {
    async newEnrollmentCode(req, ctx) {
      const caller = await requireActiveCustomer(ctx);
      const poolId = requireId("pool_id", req.poolId, "pool");
      const ttlHours = requireTtlHours(req.ttlHours);
      const { enrollmentCode, expiresAt } = await deps.servers.createEnrollmentCode({ accountId: caller.accountId, poolId, ttlHours, actor: callerActor(caller) });
      return { enrollmentCode, expiresAt: timestampFromDate(expiresAt) };
    },

    async listAccountServers(_req, ctx) {
      const caller = await requireActiveCustomer(ctx);
      return { servers: (await deps.servers.listServers(caller.accountId)).map(toServerMessage) };
    },

    async revokeAccountServer(req, ctx) {
      const caller = await requireActiveCustomer(ctx);
      const serverId = requireId("server_id", req.serverId, "srv");
      const server = await deps.servers.revokeServer(serverId, callerActor(caller), { accountId: caller.accountId });
      return { server: toServerMessage(server) };
    },
  };
}
