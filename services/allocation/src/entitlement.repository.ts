import type { Kysely } from "kysely";
import type { Selectable } from "kysely";
import type { AllocationDatabase, EncoderModelCopyTable, PoolCopyTable, PoolUsageTable } from "./database.js";

export type PoolUsageRow = Selectable<PoolUsageTable>;

type Db = Kysely<AllocationDatabase>;

/**
 * Applies a pool's entitlements if `version` is newer than the copy's (SPEC L4).
 * Keeps `used`; sets capacity and expiry. Returns false for a stale or repeated push.
 */
export async function applyEntitlement(
  db: Db,
  pool: PoolCopyTable,
  counts: ReadonlyMap<string, number>,
): Promise<boolean> {
  const current = await db.selectFrom("pools").select("version").where("pool_id", "=", pool.pool_id).forUpdate().executeTakeFirst();
  if (current && current.version >= pool.version) return false;
  await db
    .insertInto("pools")
    .values(pool)
    .onConflict((oc) => oc.column("pool_id").doUpdateSet({ expires_at: pool.expires_at, version: pool.version }))
    .execute();
  await db.updateTable("pool_usage").set({ expires_at: pool.expires_at }).where("pool_id", "=", pool.pool_id).execute();
  if (counts.size > 0) {
    await db
      .insertInto("pool_usage")
      .values([...counts].map(([licence_type, capacity]) => ({ pool_id: pool.pool_id, licence_type, capacity, expires_at: pool.expires_at })))
      .onConflict((oc) => oc.columns(["pool_id", "licence_type"]).doUpdateSet((eb) => ({ capacity: eb.ref("excluded.capacity") })))
      .execute();
  }
  return true;
}

export async function findPoolCopy(db: Db, poolId: string): Promise<PoolCopyTable | undefined> {
  return db.selectFrom("pools").selectAll().where("pool_id", "=", poolId).executeTakeFirst();
}

export async function findUsage(db: Db, poolId: string, licenceType: string): Promise<PoolUsageRow | undefined> {
  return db.selectFrom("pool_usage").selectAll().where("pool_id", "=", poolId).where("licence_type", "=", licenceType).executeTakeFirst();
}

export async function listUsage(db: Db, poolIds: readonly string[], options: { forUpdate?: boolean } = {}): Promise<PoolUsageRow[]> {
  if (poolIds.length === 0) return [];
  let query = db.selectFrom("pool_usage").selectAll().where("pool_id", "in", poolIds).orderBy("pool_id").orderBy("licence_type");
  if (options.forUpdate) query = query.forUpdate();
  return query.execute();
}

/** Returns capacity to a pool when licences end. */
export async function releaseUsage(db: Db, poolId: string, licenceType: string, count: number): Promise<void> {
  if (count === 0) return;
  await db
    .updateTable("pool_usage")
    .set((eb) => ({ used: eb("used", "-", count) }))
    .where("pool_id", "=", poolId)
    .where("licence_type", "=", licenceType)
    .execute();
}

export async function upsertEncoderModel(db: Db, row: EncoderModelCopyTable): Promise<void> {
  await db
    .insertInto("encoder_models")
    .values(row)
    .onConflict((oc) => oc.column("model").doUpdateSet({ licence_type: row.licence_type, kind: row.kind, min_v9_version: row.min_v9_version }))
    .execute();
}

export async function findEncoderModel(db: Db, model: string): Promise<EncoderModelCopyTable | undefined> {
  return db.selectFrom("encoder_models").selectAll().where("model", "=", model).executeTakeFirst();
}

export async function listEncoderModels(db: Db, models: readonly string[]): Promise<EncoderModelCopyTable[]> {
  if (models.length === 0) return [];
  return db.selectFrom("encoder_models").selectAll().where("model", "in", models).execute();
}

/** Returns the capacity held by just-ended allocations to their pools, one update per pool and type. */
export async function releaseEndedAllocations(
  db: Db,
  ended: readonly { kind: string; pool_id: string | null; licence_type: string }[],
): Promise<void> {
  const counts = new Map<string, { poolId: string; licenceType: string; count: number }>();
  for (const row of ended) {
    if (row.kind !== "pool" || !row.pool_id) continue;
    const key = `${row.pool_id}\u0000${row.licence_type}`;
    const entry = counts.get(key) ?? { poolId: row.pool_id, licenceType: row.licence_type, count: 0 };
    entry.count++;
    counts.set(key, entry);
  }
  for (const entry of counts.values()) await releaseUsage(db, entry.poolId, entry.licenceType, entry.count);
}
