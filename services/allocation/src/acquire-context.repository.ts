import { sql, type Kysely, type RawBuilder } from "kysely";
import { ALLOCATION_SCHEMA, type AllocationDatabase, type LicenceKindColumn } from "./database.js";
import type { AllocationRow } from "./allocation.repository.js";

/** Everything an acquire needs to know before it takes a licence, read in one round trip. */
export interface AcquireContext {
  server: { account_id: string; pool_id: string; state: "active" | "revoked" } | undefined;
  encoder: { licence_kind: LicenceKindColumn; model: string } | undefined;
  /** The model's licence type, when the catalogue knows the model. */
  licenceType: string | undefined;
  poolExpiresAt: Date | undefined;
  existing: AllocationRow | undefined;
}

/** The camera an acquire is for. */
export interface AcquireContextKey {
  serverId: string;
  encoderId: string;
  cameraId: string;
}

interface AcquireContextRow {
  account_id: string | null;
  pool_id: string | null;
  state: "active" | "revoked" | null;
  licence_kind: LicenceKindColumn | null;
  model: string | null;
  licence_type: string | null;
  pool_expires_at: Date | null;
  existing: AllocationRow | null;
}

/**
 * One row per key, in the keys' order. The keys travel as three arrays, so the text is the
 * same for any number of keys and one prepared statement serves every batch.
 */
export function acquireContextsQuery(keys: readonly AcquireContextKey[]): RawBuilder<AcquireContextRow> {
  const table = (name: string) => sql.id(ALLOCATION_SCHEMA, name);
  return sql<AcquireContextRow>`
    select s.account_id, s.pool_id, s.state, e.licence_kind, e.model, m.licence_type, p.expires_at as pool_expires_at,
      (select to_jsonb(a) from ${table("allocations")} a
        where a.server_id = s.server_id and a.encoder_id = k.encoder_id and a.camera_id = k.camera_id and a.state = 'active') as existing
    from unnest(${keys.map((k) => k.serverId)}::text[], ${keys.map((k) => k.encoderId)}::text[], ${keys.map((k) => k.cameraId)}::text[])
      with ordinality as k(server_id, encoder_id, camera_id, position)
    left join ${table("servers")} s on s.server_id = k.server_id
    left join ${table("encoders")} e on e.server_id = s.server_id and e.encoder_id = k.encoder_id
    left join ${table("encoder_models")} m on m.model = e.model
    left join ${table("pools")} p on p.pool_id = s.pool_id
    order by k.position`;
}

export async function loadAcquireContexts(db: Kysely<AllocationDatabase>, keys: readonly AcquireContextKey[]): Promise<AcquireContext[]> {
  const { rows } = await acquireContextsQuery(keys).execute(db);
  if (rows.length !== keys.length) throw new Error(`the acquire pre-read answered ${rows.length} rows for ${keys.length} calls`);
  return rows.map(toAcquireContext);
}

function toAcquireContext(row: AcquireContextRow): AcquireContext {
  if (!row.account_id || !row.pool_id || !row.state) return { server: undefined, encoder: undefined, licenceType: undefined, poolExpiresAt: undefined, existing: undefined };
  return {
    server: { account_id: row.account_id, pool_id: row.pool_id, state: row.state },
    encoder: row.licence_kind && row.model ? { licence_kind: row.licence_kind, model: row.model } : undefined,
    licenceType: row.licence_type ?? undefined,
    poolExpiresAt: row.pool_expires_at ?? undefined,
    existing: row.existing ? allocationFromJson(row.existing) : undefined,
  };
}

/** A row that came back as JSON: its timestamps are strings, its numbers may be too. */
function allocationFromJson(json: AllocationRow): AllocationRow {
  const date = (value: unknown) => (value === null || value === undefined ? null : new Date(value as string));
  return {
    ...json,
    acquired_at: date(json.acquired_at)!,
    lease_expires_at: date(json.lease_expires_at),
    ended_at: date(json.ended_at),
    lease_serial: Number(json.lease_serial),
    grant_seq: Number(json.grant_seq) as AllocationRow["grant_seq"],
  };
}
