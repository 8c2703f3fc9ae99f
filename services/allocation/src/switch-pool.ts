import { sql } from "kysely";
import { recordAudit } from "@cls/audit";
import { NotFoundError } from "@cls/errors";
import { recordEvents } from "@cls/outbox";
import type { SignedLease } from "@cls/proto";
import type { AllocationContext } from "./context.js";
import { ALLOCATION_SCHEMA } from "./database.js";
import { listActiveForServer, nextLeaseSerials, renewLeases } from "./allocation.repository.js";
import { findPoolCopy, listUsage, releaseUsage } from "./entitlement.repository.js";
import { PoolExpiredError, PoolShortfallError } from "./errors.js";
import { leaseTimes } from "./lease-times.js";
import { signLease } from "./leases.js";
import { requireAccountServer, setServerPool } from "./server.repository.js";

/**
 * Moves a server to another pool of its account (SPEC L3): all of its active licences move
 * at once with fresh leases, or, when the new pool lacks room for any type, nothing changes
 * and the refusal names the shortfall per type.
 */
export async function switchPool(
  ctx: AllocationContext,
  request: { accountId: string; serverId: string; poolId: string; actor: string },
): Promise<{ poolId: string; leases: SignedLease[] }> {
  const now = ctx.clock.now();
  const moved = await ctx.db.transaction().execute(async (trx) => {
    const server = await requireAccountServer(trx, request.accountId, request.serverId, { forUpdate: true });
    const target = await findPoolCopy(trx, request.poolId);
    if (!target || target.account_id !== server.account_id) throw new NotFoundError(`pool ${request.poolId}`);
    if (target.expires_at <= now) throw new PoolExpiredError(target.pool_id, target.expires_at);
    const fromPoolId = server.pool_id;
    const active = (await listActiveForServer(trx, server.server_id, { forUpdate: true })).filter((a) => a.kind === "pool");
    if (fromPoolId === target.pool_id) return { server, target, active: [], fromPoolId };

    // Lock both pools' usage rows in one order, so two opposite switches cannot deadlock.
    const usage = await listUsage(trx, [fromPoolId, target.pool_id].sort(), { forUpdate: true });
    const needed = new Map<string, number>();
    for (const allocation of active) needed.set(allocation.licence_type, (needed.get(allocation.licence_type) ?? 0) + 1);
    const shortfalls = [...needed].flatMap(([licenceType, count]) => {
      const row = usage.find((u) => u.pool_id === target.pool_id && u.licence_type === licenceType);
      const free = row ? Math.max(0, row.capacity - row.used) : 0;
      return count > free ? [{ licenceType, needed: count, free }] : [];
    });
    if (shortfalls.length > 0) throw new PoolShortfallError(target.pool_id, shortfalls);

    for (const [licenceType, count] of needed) {
      await sql`update ${sql.id(ALLOCATION_SCHEMA, "pool_usage")} set used = used + ${count}
        where pool_id = ${target.pool_id} and licence_type = ${licenceType} and used + ${count} <= capacity`.execute(trx);
      await releaseUsage(trx, fromPoolId, licenceType, count);
    }
    if (active.length > 0) {
      await trx.updateTable("allocations").set({ pool_id: target.pool_id }).where("allocation_id", "in", active.map((a) => a.allocation_id)).execute();
    }
    await setServerPool(trx, server.server_id, target.pool_id);
    const detail = { server_id: server.server_id, from_pool_id: fromPoolId, to_pool_id: target.pool_id, licences_moved: active.length };
    await recordAudit(trx, { actor: request.actor, action: "server.pool_switched", accountId: server.account_id, subject: server.server_id, detail, occurredAt: now });
    await recordEvents(trx, [{ accountId: server.account_id, type: "server.pool_switched", data: detail, occurredAt: now }]);
    return { server, target, active: active.map((a) => ({ ...a, pool_id: target.pool_id })), fromPoolId };
  });
  ctx.outbox.kick();

  const times = leaseTimes(now, moved.target.expires_at);
  const serials = await nextLeaseSerials(ctx.db, moved.active.length);
  await renewLeases(ctx.db, moved.active.map((a, i) => ({ allocationId: a.allocation_id, serial: serials[i]!, expiresAt: times.expiresAt })));
  return {
    poolId: moved.target.pool_id,
    leases: moved.active.map((a, i) => signLease(ctx.signer, a, serials[i]!, times)),
  };
}
