import type { AllocationContext } from "./context.js";
import { endAllocations, listActiveForServer } from "./allocation.repository.js";
import { findPoolCopy, releaseEndedAllocations } from "./entitlement.repository.js";
import { countLicences } from "./metrics.js";
import { NotFoundError } from "@cls/errors";
import { bindServer, markServerRevoked } from "./server.repository.js";

/** Records a newly enrolled server's pool; repeating it is harmless. */
export async function bindEnrolledServer(ctx: AllocationContext, request: { serverId: string; accountId: string; poolId: string }): Promise<void> {
  const pool = await findPoolCopy(ctx.db, request.poolId);
  if (!pool || pool.account_id !== request.accountId) throw new NotFoundError(`pool ${request.poolId}`);
  await bindServer(ctx.db, { server_id: request.serverId, account_id: request.accountId, pool_id: request.poolId, bound_at: ctx.clock.now() });
}

/** A revoked server's calls stop and its licences return to the pool (SPEC L11). */
export async function revokeServerLicences(ctx: AllocationContext, serverId: string): Promise<number> {
  const now = ctx.clock.now();
  return ctx.db.transaction().execute(async (trx) => {
    await markServerRevoked(trx, serverId, now);
    const active = await listActiveForServer(trx, serverId, { forUpdate: true });
    const ended = await endAllocations(trx, active.map((a) => a.allocation_id), "revoked", "server_revoked", now);
    await releaseEndedAllocations(trx, ended);
    countLicences("revoked", ended);
    return ended.length;
  });
}
