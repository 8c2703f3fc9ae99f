import type { ServiceImpl } from "@connectrpc/connect";
import { InvalidArgumentError } from "@cls/errors";
import { EncoderKind, type AllocationAdminService } from "@cls/proto";
import { listAudit } from "@cls/audit";
import { pageSize, requireCount, requireId, requireListSize, requireSlug, requireTimestamp } from "@cls/validation";
import { listAllocations, usedByPool } from "./allocation.repository.js";
import { toAllocationMessage } from "./allocation.mapping.js";
import type { AllocationContext } from "./context.js";
import { applyEntitlement, upsertEncoderModel } from "./entitlement.repository.js";
import { parseVersion } from "./firmware.js";
import { bindEnrolledServer, revokeServerLicences } from "./server-binding.js";

/** Internal: how the pool and identity services keep this service's copies current. */
export function createAllocationAdminService(ctx: AllocationContext): ServiceImpl<typeof AllocationAdminService> {
  const { db } = ctx;
  return {
    async applyEntitlement(req) {
      const poolId = requireId("pool_id", req.poolId, "pool");
      const accountId = requireId("account_id", req.accountId, "acc");
      const expiresAt = requireTimestamp("expires_at", req.expiresAt);
      if (req.version < 1n) throw new InvalidArgumentError("version", "must be 1 or more");
      const counts = new Map(Object.entries(req.counts).map(([type, count]) => [requireSlug(`counts[${type}]`, type), requireCount(`counts[${type}]`, count)]));
      const applied = await db.transaction().execute((trx) =>
        applyEntitlement(trx, { pool_id: poolId, account_id: accountId, expires_at: expiresAt, version: Number(req.version) }, counts),
      );
      return { applied };
    },

    async applyEncoderModel(req) {
      const model = req.model;
      if (!model) throw new InvalidArgumentError("model", "is required");
      if (model.kind !== EncoderKind.HARDWARE && model.kind !== EncoderKind.CONTAINER) throw new InvalidArgumentError("model.kind", "must be hardware or container");
      if (!parseVersion(model.minV9Version)) throw new InvalidArgumentError("model.min_v9_version", "must be a version such as 9.2");
      await upsertEncoderModel(db, {
        model: requireSlug("model.model", model.model),
        licence_type: requireSlug("model.licence_type", model.licenceType),
        kind: model.kind === EncoderKind.HARDWARE ? "hardware" : "container",
        min_v9_version: model.minV9Version,
      });
      return {};
    },

    async bindServer(req) {
      await bindEnrolledServer(ctx, {
        serverId: requireId("server_id", req.serverId, "srv"),
        accountId: requireId("account_id", req.accountId, "acc"),
        poolId: requireId("pool_id", req.poolId, "pool"),
      });
      return {};
    },

    async applyServerRevocation(req) {
      const released = await revokeServerLicences(ctx, requireId("server_id", req.serverId, "srv"));
      return { released };
    },

    async getPoolUsage(req) {
      requireListSize("pool_ids", req.poolIds, 1_000);
      const poolIds = req.poolIds.map((id, i) => requireId(`pool_ids[${i}]`, id, "pool"));
      const rows = await usedByPool(db, poolIds);
      return {
        usages: poolIds.map((poolId) => ({
          poolId,
          used: Object.fromEntries(rows.filter((row) => row.pool_id === poolId).map((row) => [row.licence_type, row.used])),
        })),
      };
    },

    async listAudit(req) {
      const accountId = req.accountId ? requireId("account_id", req.accountId, "acc") : undefined;
      return { entries: await listAudit(db, { ...(accountId ? { accountId } : {}), limit: pageSize("limit", req.limit, 100, 1_000) }) };
    },

    async listAccountAllocations(req) {
      const rows = await listAllocations(db, { accountId: requireId("account_id", req.accountId, "acc"), includeEnded: true, limit: 1_000 });
      return { allocations: rows.map(toAllocationMessage) };
    },
  };
}
