import { recordEvents } from "@cls/outbox";
import type { AllocationContext } from "./context.js";
import { endAllocations, lockLapsedAllocations } from "./allocation.repository.js";
import { releaseEndedAllocations } from "./entitlement.repository.js";
import { countLicences } from "./metrics.js";

const BATCH = 500;

/**
 * Frees allocations whose lease ran out without a check (SPEC L9a), so a dead server cannot
 * hold licences forever. Replicas share the work: each locks its own batch with SKIP LOCKED.
 */
export async function reclaimLapsed(ctx: AllocationContext): Promise<number> {
  let total = 0;
  for (;;) {
    const now = ctx.clock.now();
    const reclaimed = await ctx.db.transaction().execute(async (trx) => {
      const lapsed = await lockLapsedAllocations(trx, now, BATCH);
      const ended = await endAllocations(trx, lapsed.map((a) => a.allocation_id), "reclaimed", "lease_expired", now);
      await releaseEndedAllocations(trx, ended);
      countLicences("reclaimed", ended);
      await recordEvents(
        trx,
        ended.map((row) => ({
          accountId: row.account_id,
          type: "licence.reclaimed",
          data: { allocation_id: row.allocation_id, server_id: row.server_id, encoder_id: row.encoder_id, camera_id: row.camera_id, pool_id: row.pool_id, licence_type: row.licence_type, lease_expired_at: row.lease_expires_at?.toISOString() },
          occurredAt: now,
        })),
      );
      return ended.length;
    });
    total += reclaimed;
    if (reclaimed < BATCH) break;
  }
  if (total > 0) ctx.outbox.kick();
  return total;
}
