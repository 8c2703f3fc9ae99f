import { sql, type Kysely } from "kysely";
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

export async function loadAcquireContext(db: Kysely<AllocationDatabase>, serverId: string, encoderId: string, cameraId: string): Promise<AcquireContext> {
  const table = (name: string) => sql.id(ALLOCATION_SCHEMA, name);
  const { rows } = await sql<{
    account_id: string;
    pool_id: string;
    state: "active" | "revoked";
    licence_kind: LicenceKindColumn | null;
    model: string | null;
    licence_type: string | null;
    pool_expires_at: Date | null;
    existing: AllocationRow | null;
  }>`
    select s.account_id, s.pool_id, s.state, e.licence_kind, e.model, m.licence_type, p.expires_at as pool_expires_at,
      (select to_jsonb(a) from ${table("allocations")} a
        where a.server_id = s.server_id and a.encoder_id = ${encoderId} and a.camera_id = ${cameraId} and a.state = 'active') as existing
    from ${table("servers")} s
    left join ${table("encoders")} e on e.server_id = s.server_id and e.encoder_id = ${encoderId}
    left join ${table("encoder_models")} m on m.model = e.model
    left join ${table("pools")} p on p.pool_id = s.pool_id
    where s.server_id = ${serverId}`.execute(db);
  const row = rows[0];
  if (!row) return { server: undefined, encoder: undefined, licenceType: undefined, poolExpiresAt: undefined, existing: undefined };
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
