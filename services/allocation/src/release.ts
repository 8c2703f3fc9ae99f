import { recordAudit } from "@cls/audit";
import type { AllocationContext } from "./context.js";
import { endAllocations, findActiveAllocation } from "./allocation.repository.js";
import { releaseUsage } from "./entitlement.repository.js";
import { requireAccountServer } from "./server.repository.js";
import { countLicences } from "./metrics.js";

/**
 * A camera removed (SPEC L7): its licence returns to the pool at once. Releasing a camera
 * that holds nothing is not an error; it reports `released: false`.
 */
export async function releaseLicence(
  ctx: AllocationContext,
  request: { accountId: string; serverId: string; encoderId: string; cameraId: string; actor: string },
): Promise<boolean> {
  const server = await requireAccountServer(ctx.db, request.accountId, request.serverId);
  const now = ctx.clock.now();
  const released = await ctx.db.transaction().execute(async (trx) => {
    const active = await findActiveAllocation(trx, server.server_id, request.encoderId, request.cameraId);
    if (!active) return undefined;
    const [ended] = await endAllocations(trx, [active.allocation_id], "released", "released", now);
    if (!ended) return undefined;
    if (ended.kind === "pool" && ended.pool_id) await releaseUsage(trx, ended.pool_id, ended.licence_type, 1);
    await recordAudit(trx, {
      actor: request.actor,
      action: "licence.released",
      accountId: server.account_id,
      subject: ended.allocation_id,
      detail: { server_id: server.server_id, encoder_id: ended.encoder_id, camera_id: ended.camera_id, pool_id: ended.pool_id, licence_type: ended.licence_type },
      occurredAt: now,
    });
    return ended;
  });
  if (!released) return false;
  countLicences("released", [released]);
  return true;
}
