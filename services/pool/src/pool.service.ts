import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { AllocationAdminService, PoolService } from "@cls/proto";
import { requireCaller } from "@cls/server";
import type { PoolDatabase } from "./database.js";
import { listAccountPools } from "./pool.repository.js";
import { toPoolMessage } from "./pool.mapping.js";

/** Public: the caller's own account's pools with total, used and free per type (SPEC L2). */
export function createPoolService(deps: {
  db: Kysely<PoolDatabase>;
  allocation: Client<typeof AllocationAdminService>;
}): ServiceImpl<typeof PoolService> {
  return {
    async listPools(_req, ctx) {
      const caller = requireCaller(ctx);
      const pools = await listAccountPools(deps.db, caller.accountId);
      if (pools.length === 0) return { pools: [] };
      const { usages } = await deps.allocation.getPoolUsage({ poolIds: pools.map((pool) => pool.pool_id) }, { timeoutMs: 5_000 });
      const usedByPool = new Map(usages.map((usage) => [usage.poolId, usage.used]));
      return { pools: pools.map((pool) => toPoolMessage(pool, usedByPool.get(pool.pool_id))) };
    },
  };
}
