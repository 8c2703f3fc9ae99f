import pg from "pg";

/** What the checker reads of schema `allocation`. */
export interface AllocationRecord {
  allocation_id: string;
  pool_id: string | null;
  licence_type: string;
  camera: string;
  state: string;
  end_reason: string | null;
  acquired_at: Date;
}

export interface UsageRecord {
  pool_id: string;
  licence_type: string;
  capacity: number;
  used: number;
  fence: number;
  /** Active allocations of the pool and type, counted in the same statement (same snapshot). */
  active: number;
}

/** Usage with the active count beside it, in one statement: one snapshot of both. */
export const USAGE_SQL = `
  select u.pool_id, u.licence_type, u.capacity, u.used, u.fence::float8 as fence,
         (select count(*) from allocation.allocations a
           where a.pool_id = u.pool_id and a.licence_type = u.licence_type and a.state = 'active')::int as active
  from allocation.pool_usage u`;

export async function readDatabaseState(url: string): Promise<{ allocations: AllocationRecord[]; usage: UsageRecord[] }> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    // One snapshot for both reads.
    await client.query("begin isolation level repeatable read read only");
    const allocations = await client.query<AllocationRecord>(
      `select allocation_id, pool_id, licence_type, server_id || '/' || encoder_id || '/' || camera_id as camera, state, end_reason, acquired_at
       from allocation.allocations order by grant_seq`,
    );
    const usage = await client.query<UsageRecord>(USAGE_SQL);
    await client.query("commit");
    return { allocations: allocations.rows, usage: usage.rows };
  } finally {
    await client.end();
  }
}
