import { sql, type Kysely } from "kysely";
import { newId } from "@cls/db";
import { ALLOCATION_SCHEMA, type AllocationDatabase, type AllocationStateColumn, type AllocationTable, type LicenceKindColumn } from "./database.js";

type Db = Kysely<AllocationDatabase>;
export type AllocationRow = Omit<AllocationTable, "grant_seq" | "lease_serial"> & { grant_seq: number; lease_serial: number };

/** Takes `count` lease serial numbers; every issued lease has its own. */
export async function nextLeaseSerials(db: Db, count: number): Promise<number[]> {
  if (count === 0) return [];
  const { rows } = await sql<{ serial: number }>`select nextval(${sql.lit(`${ALLOCATION_SCHEMA}.lease_serial`)}::regclass)::bigint as serial from generate_series(1, ${count})`.execute(db);
  return rows.map((row) => Number(row.serial));
}

export async function findActiveAllocation(db: Db, serverId: string, encoderId: string, cameraId: string): Promise<AllocationRow | undefined> {
  return (await db
    .selectFrom("allocations")
    .selectAll()
    .where("server_id", "=", serverId)
    .where("encoder_id", "=", encoderId)
    .where("camera_id", "=", cameraId)
    .where("state", "=", "active")
    .executeTakeFirst()) as AllocationRow | undefined;
}

/** What a grant supplies of an allocation; the id, state and end come from here. */
export type NewAllocation = Omit<AllocationTable, "allocation_id" | "state" | "ended_at" | "end_reason" | "grant_seq" | "lease_serial"> & {
  /** Omitted: the next from the lease_serial sequence. */
  lease_serial?: number;
};

/**
 * Inserts an active allocation unless the camera already has one (SPEC L7 idempotency).
 * Returns the new row, or undefined when another request won the race.
 */
export async function insertAllocationIfAbsent(db: Db, row: NewAllocation): Promise<AllocationRow | undefined> {
  return (await db
    .insertInto("allocations")
    .values({ ...row, allocation_id: newId("alloc"), state: "active", ended_at: null, end_reason: null })
    // A literal, not a parameter: the partial unique index is matched at plan time, and a prepared statement's generic plan has no parameter values.
    .onConflict((oc) => oc.columns(["server_id", "encoder_id", "camera_id"]).where("state", "=", sql.lit("active")).doNothing())
    .returningAll()
    .executeTakeFirst()) as AllocationRow | undefined;
}

export async function listActiveForEncoders(db: Db, serverId: string, encoderIds: readonly string[]): Promise<AllocationRow[]> {
  if (encoderIds.length === 0) return [];
  return (await db
    .selectFrom("allocations")
    .selectAll()
    .where("server_id", "=", serverId)
    .where("encoder_id", "in", encoderIds)
    .where("state", "=", "active")
    .orderBy("grant_seq")
    .execute()) as AllocationRow[];
}

export async function listActiveForServer(db: Db, serverId: string, options: { forUpdate?: boolean } = {}): Promise<AllocationRow[]> {
  let query = db.selectFrom("allocations").selectAll().where("server_id", "=", serverId).where("state", "=", "active").orderBy("grant_seq");
  if (options.forUpdate) query = query.forUpdate();
  return (await query.execute()) as AllocationRow[];
}

/** Ends allocations that are still active; returns the ones this call ended. */
export async function endAllocations(
  db: Db,
  allocationIds: readonly string[],
  state: Exclude<AllocationStateColumn, "active">,
  reason: string,
  at: Date,
): Promise<AllocationRow[]> {
  if (allocationIds.length === 0) return [];
  return (await db
    .updateTable("allocations")
    .set({ state, end_reason: reason, ended_at: at })
    .where("allocation_id", "in", allocationIds)
    .where("state", "=", "active")
    .returningAll()
    .execute()) as AllocationRow[];
}

export async function renewLeases(db: Db, renewals: readonly { allocationId: string; serial: number; expiresAt: Date | null }[]): Promise<void> {
  if (renewals.length === 0) return;
  const values = sql.join(renewals.map((r) => sql`(${r.allocationId}, ${r.serial}::bigint, ${r.expiresAt}::timestamptz)`));
  await sql`
    update ${sql.id(ALLOCATION_SCHEMA, "allocations")} as a
    set lease_serial = v.serial, lease_expires_at = v.expires_at
    from (values ${values}) as v(allocation_id, serial, expires_at)
    where a.allocation_id = v.allocation_id and a.state = 'active'`.execute(db);
}

/** Gives one active allocation a fresh lease in one statement; returns its new serial. */
export async function renewLeaseWithNextSerial(db: Db, allocationId: string, expiresAt: Date | null): Promise<number | undefined> {
  const row = await db
    .updateTable("allocations")
    .set({ lease_serial: sql<number>`nextval(${sql.lit(`${ALLOCATION_SCHEMA}.lease_serial`)}::regclass)`, lease_expires_at: expiresAt })
    .where("allocation_id", "=", allocationId)
    .where("state", "=", "active")
    .returning("lease_serial")
    .executeTakeFirst();
  return row ? Number(row.lease_serial) : undefined;
}

/**
 * Of the active allocations of one pool and type, those ranked above `capacity` when
 * ordered oldest first: the newest, which a lowered count revokes (SPEC L4).
 */
export async function listAboveCapacity(db: Db, poolId: string, licenceType: string, capacity: number): Promise<{ allocation_id: string; server_id: string; encoder_id: string }[]> {
  const { rows } = await sql<{ allocation_id: string; server_id: string; encoder_id: string }>`
    select allocation_id, server_id, encoder_id from (
      select allocation_id, server_id, encoder_id, row_number() over (order by grant_seq) as rank
      from ${sql.id(ALLOCATION_SCHEMA, "allocations")}
      where pool_id = ${poolId} and licence_type = ${licenceType} and state = 'active' and kind = 'pool'
    ) ranked
    where rank > ${capacity}`.execute(db);
  return rows;
}

export interface AllocationFilter {
  accountId: string;
  serverId?: string;
  encoderId?: string;
  cameraId?: string;
  includeEnded: boolean;
  limit: number;
}

export async function listAllocations(db: Db, filter: AllocationFilter): Promise<AllocationRow[]> {
  let query = db.selectFrom("allocations").selectAll().where("account_id", "=", filter.accountId);
  if (filter.serverId) query = query.where("server_id", "=", filter.serverId);
  if (filter.encoderId) query = query.where("encoder_id", "=", filter.encoderId);
  if (filter.cameraId) query = query.where("camera_id", "=", filter.cameraId);
  if (!filter.includeEnded) query = query.where("state", "=", "active");
  return (await query.orderBy("grant_seq", "desc").limit(filter.limit).execute()) as AllocationRow[];
}

/** Allocations whose lease ran out without a check (SPEC L9a), locked for this replica only. */
export async function lockLapsedAllocations(db: Db, now: Date, limit: number): Promise<AllocationRow[]> {
  return (await db
    .selectFrom("allocations")
    .selectAll()
    .where("state", "=", "active")
    .where("lease_expires_at", "<", now)
    .orderBy("lease_expires_at")
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute()) as AllocationRow[];
}

export async function usedByPool(db: Db, poolIds: readonly string[]): Promise<{ pool_id: string; licence_type: string; used: number }[]> {
  if (poolIds.length === 0) return [];
  return db.selectFrom("pool_usage").select(["pool_id", "licence_type", "used"]).where("pool_id", "in", poolIds).execute();
}

/** The active allocations of the given cameras, keyed `server\0encoder\0camera`. */
export async function findActiveForCameras(
  db: Db,
  cameras: readonly { serverId: string; encoderId: string; cameraId: string }[],
): Promise<Map<string, AllocationRow>> {
  if (cameras.length === 0) return new Map();
  const tuples = sql.join(cameras.map((c) => sql`(${c.serverId}, ${c.encoderId}, ${c.cameraId})`));
  const { rows } = await sql<AllocationRow>`
    select * from ${sql.id(ALLOCATION_SCHEMA, "allocations")}
    where state = 'active' and (server_id, encoder_id, camera_id) in (${tuples})`.execute(db);
  return new Map(rows.map((row) => [cameraKey(row.server_id, row.encoder_id, row.camera_id), row]));
}

export function cameraKey(serverId: string, encoderId: string, cameraId: string): string {
  return `${serverId}\u0000${encoderId}\u0000${cameraId}`;
}

