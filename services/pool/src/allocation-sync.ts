import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { EncoderKind, type AllocationAdminService } from "@cls/proto";
import type { EncoderModelTable, PoolDatabase } from "./database.js";
import { listUnsyncedPools, markPoolSynced, type PoolRecord } from "./pool.repository.js";
import { listEncoderModels, markModelSynced } from "./catalogue.repository.js";

export interface AllocationSync {
  /** Pushes one pool's entitlements to the allocation service's copy (SPEC L4). */
  pushPool(pool: PoolRecord): Promise<void>;
  pushModel(model: EncoderModelTable): Promise<void>;
  /** Pushes everything not yet acknowledged; run periodically and after a failed push. */
  pushPending(): Promise<void>;
  stop(): void;
}

/**
 * Keeps the allocation service's copy of entitlements and the model catalogue current.
 * Pushes are idempotent (by pool version), so a retry never does harm.
 */
export function createAllocationSync(deps: {
  db: Kysely<PoolDatabase>;
  allocation: Client<typeof AllocationAdminService>;
  logger: Logger;
  intervalMs?: number;
}): AllocationSync {
  const { db, allocation } = deps;

  async function pushPool(pool: PoolRecord): Promise<void> {
    await allocation.applyEntitlement(
      {
        poolId: pool.pool_id,
        accountId: pool.account_id,
        expiresAt: timestampFromDate(pool.expires_at),
        counts: Object.fromEntries(pool.totals),
        version: BigInt(pool.version),
      },
      { timeoutMs: 5_000 },
    );
    await markPoolSynced(db, pool.pool_id, pool.version);
  }

  async function pushModel(model: EncoderModelTable): Promise<void> {
    await allocation.applyEncoderModel(
      {
        model: {
          model: model.model,
          licenceType: model.licence_type,
          kind: model.kind === "hardware" ? EncoderKind.HARDWARE : EncoderKind.CONTAINER,
          minV9Version: model.min_v9_version,
        },
      },
      { timeoutMs: 5_000 },
    );
    await markModelSynced(db, model.model, model.updated_at);
  }

  async function pushPending(): Promise<void> {
    for (const model of await listEncoderModels(db, { unsyncedOnly: true })) await pushModel(model);
    for (const pool of await listUnsyncedPools(db, 500)) await pushPool(pool);
  }

  const timer = setInterval(() => {
    pushPending().catch((error: unknown) => deps.logger.warn({ err: error }, "entitlement sync to allocation failed; will retry"));
  }, deps.intervalMs ?? 5_000);
  timer.unref();

  return { pushPool, pushModel, pushPending, stop: () => clearInterval(timer) };
}
