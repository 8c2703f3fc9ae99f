import type { Kysely } from "kysely";
import type { PoolDatabase, PoolTable } from "./database.js";

/** A pool with its totals per licence type. */
export interface PoolRecord extends PoolTable {
  totals: Map<string, number>;
}

type Db = Kysely<PoolDatabase>;

async function attachTotals(db: Db, pools: PoolTable[]): Promise<PoolRecord[]> {
  if (pools.length === 0) return [];
  const rows = await db
    .selectFrom("pool_entitlements")
    .selectAll()
    .where(
      "pool_id",
      "in",
      pools.map((pool) => pool.pool_id),
    )
    .orderBy("licence_type")
    .execute();
  return pools.map((pool) => ({
    ...pool,
    totals: new Map(rows.filter((row) => row.pool_id === pool.pool_id).map((row) => [row.licence_type, row.total])),
  }));
}

export async function findPool(db: Db, poolId: string, options: { forUpdate?: boolean } = {}): Promise<PoolRecord | undefined> {
  let query = db.selectFrom("pools").selectAll().where("pool_id", "=", poolId);
  if (options.forUpdate) query = query.forUpdate();
  const pool = await query.executeTakeFirst();
  return pool ? (await attachTotals(db, [pool]))[0] : undefined;
}

export async function listAccountPools(db: Db, accountId: string): Promise<PoolRecord[]> {
  const pools = await db.selectFrom("pools").selectAll().where("account_id", "=", accountId).orderBy("expires_at").orderBy("pool_id").execute();
  return attachTotals(db, pools);
}

export async function insertPool(db: Db, pool: PoolTable, totals: Map<string, number>): Promise<void> {
  await db.insertInto("pools").values(pool).execute();
  await putTotals(db, pool.pool_id, totals);
}

export async function putTotals(db: Db, poolId: string, totals: Map<string, number>): Promise<void> {
  if (totals.size === 0) return;
  await db
    .insertInto("pool_entitlements")
    .values([...totals].map(([licence_type, total]) => ({ pool_id: poolId, licence_type, total })))
    .onConflict((oc) => oc.columns(["pool_id", "licence_type"]).doUpdateSet((eb) => ({ total: eb.ref("excluded.total") })))
    .execute();
}

export async function updatePoolHead(db: Db, poolId: string, changes: { expires_at: Date; version: number }): Promise<void> {
  await db.updateTable("pools").set(changes).where("pool_id", "=", poolId).execute();
}

/** Pools whose latest version the allocation service has not acknowledged. */
export async function listUnsyncedPools(db: Db, limit: number): Promise<PoolRecord[]> {
  const pools = await db
    .selectFrom("pools")
    .selectAll()
    .whereRef("synced_version", "<", "version")
    .orderBy("pool_id")
    .limit(limit)
    .execute();
  return attachTotals(db, pools);
}

export async function markPoolSynced(db: Db, poolId: string, version: number): Promise<void> {
  await db
    .updateTable("pools")
    .set({ synced_version: version })
    .where("pool_id", "=", poolId)
    .where("synced_version", "<", version)
    .execute();
}
