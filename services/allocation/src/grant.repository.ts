import { sql, type Kysely } from "kysely";
import { newId } from "@cls/db";
import type { AllocationRow } from "./allocation.repository.js";
import { ALLOCATION_SCHEMA, type AllocationDatabase, type PoolUsageTable, type ServerTable } from "./database.js";

type Db = Kysely<AllocationDatabase>;
type NullableColumns<T> = { [K in keyof T]: T[K] | null };

const table = (name: string) => sql.id(ALLOCATION_SCHEMA, name);

export type ServerBinding = Pick<ServerTable, "server_id" | "pool_id" | "state">;
export type LockedUsage = Pick<PoolUsageTable, "capacity" | "expires_at"> & { used: number; fence: number };

/**
 * Locks the servers' bindings (FOR SHARE, in id order) and then the pool's usage row (FOR
 * UPDATE), in one statement, and reads both.
 *
 * The order is the one every writer keeps: servers first, then pool rows. Postgres promises no
 * order between the parts of one statement, so the usage row's filter counts the locked
 * servers: the usage row cannot reach its lock before every server row has been locked.
 */
export async function lockServersThenUsage(
  db: Db,
  serverIds: readonly string[],
  poolId: string,
  licenceType: string,
): Promise<{ bindings: Map<string, ServerBinding>; usage: LockedUsage | undefined }> {
  const { rows } = await sql<NullableColumns<LockedUsage & ServerBinding>>`
    with bound as materialized (
      select server_id, pool_id, state from ${table("servers")}
      where server_id = any(${[...serverIds]}::text[])
      order by server_id
      for share
    ), locked_usage as materialized (
      select capacity, used, fence, expires_at from ${table("pool_usage")}
      where pool_id = ${poolId}::text and licence_type = ${licenceType}::text and (select count(*) from bound) >= 0
      for update
    )
    select locked_usage.capacity, locked_usage.used, locked_usage.fence, locked_usage.expires_at, bound.server_id, bound.pool_id, bound.state
    from (values (1)) as one_row (x)
    left join locked_usage on true
    left join bound on true`.execute(db);
  // One row per locked server, each repeating the usage row; a single row of nulls when neither exists.
  const first = rows[0]!;
  const usage = first.capacity === null ? undefined : { capacity: first.capacity, used: first.used!, fence: first.fence!, expires_at: first.expires_at! };
  const bindings = new Map<string, ServerBinding>();
  for (const row of rows) {
    if (row.server_id !== null) bindings.set(row.server_id, { server_id: row.server_id, pool_id: row.pool_id!, state: row.state! });
  }
  return { bindings, usage };
}

/** One camera's new allocation in a grant. */
export interface CameraGrant {
  accountId: string;
  serverId: string;
  encoderId: string;
  cameraId: string;
  leaseExpiresAt: Date;
}

/**
 * Inserts active pool allocations, skipping cameras that already hold one, and adds the number
 * inserted to the pool's `used`, in one statement. The addition is made only where `used + n <=
 * capacity`; if it is not, this throws, so the caller's transaction rolls the inserts back.
 * With the usage row locked and `n` sized to the room read under that lock, it always fits.
 *
 * `fence`, when given, is written to the usage row with the addition.
 */
export async function insertAndCountAllocations(
  db: Db,
  grant: { poolId: string; licenceType: string; now: Date; fence: number | null; cameras: readonly CameraGrant[] },
): Promise<{ inserted: AllocationRow[]; usedAfter: number | undefined }> {
  if (grant.cameras.length === 0) return { inserted: [], usedAfter: undefined };
  const column = <K extends keyof CameraGrant>(key: K) => grant.cameras.map((camera) => camera[key]);
  const { rows } = await sql<AllocationRow & { used_after: number | null }>`
    with inserted as (
      insert into ${table("allocations")}
        (allocation_id, account_id, pool_id, server_id, encoder_id, camera_id, licence_type, kind, state, acquired_at, lease_expires_at)
      select wanted.allocation_id, wanted.account_id, ${grant.poolId}::text, wanted.server_id, wanted.encoder_id, wanted.camera_id,
        ${grant.licenceType}::text, 'pool', 'active', ${grant.now}::timestamptz, wanted.lease_expires_at
      from unnest(${grant.cameras.map(() => newId("alloc"))}::text[], ${column("accountId")}::text[], ${column("serverId")}::text[],
        ${column("encoderId")}::text[], ${column("cameraId")}::text[], ${column("leaseExpiresAt")}::timestamptz[])
        as wanted (allocation_id, account_id, server_id, encoder_id, camera_id, lease_expires_at)
      on conflict (server_id, encoder_id, camera_id) where state = 'active' do nothing
      returning *
    ), counted as (
      update ${table("pool_usage")} as pool_row
      set used = pool_row.used + added.n, fence = coalesce(${grant.fence}::bigint, pool_row.fence)
      from (select count(*) as n from inserted) as added
      where pool_row.pool_id = ${grant.poolId}::text and pool_row.licence_type = ${grant.licenceType}::text
        and added.n > 0 and pool_row.used + added.n <= pool_row.capacity
      returning pool_row.used
    )
    select inserted.*, (select used from counted) as used_after from inserted`.execute(db);
  if (rows.length === 0) return { inserted: [], usedAfter: undefined };
  const usedAfter = rows[0]!.used_after;
  if (usedAfter === null) throw new Error("pool usage changed under its row lock");
  return { inserted: rows.map(({ used_after: _, ...row }) => row), usedAfter };
}
