import { sql, type Kysely } from "kysely";
import { ALLOCATION_SCHEMA, type AllocationDatabase, type EncoderTable } from "./database.js";

type Db = Kysely<AllocationDatabase>;

export async function findEncoder(db: Db, serverId: string, encoderId: string): Promise<EncoderTable | undefined> {
  return db.selectFrom("encoders").selectAll().where("server_id", "=", serverId).where("encoder_id", "=", encoderId).executeTakeFirst();
}

export async function listEncoders(db: Db, serverId: string, encoderIds: readonly string[]): Promise<EncoderTable[]> {
  if (encoderIds.length === 0) return [];
  return db.selectFrom("encoders").selectAll().where("server_id", "=", serverId).where("encoder_id", "in", encoderIds).execute();
}

export async function upsertEncoder(db: Db, row: EncoderTable): Promise<void> {
  await db
    .insertInto("encoders")
    .values(row)
    .onConflict((oc) =>
      oc.columns(["server_id", "encoder_id"]).doUpdateSet({
        model: row.model,
        firmware_version: row.firmware_version,
        highest_version_seen: row.highest_version_seen,
        licence_kind: row.licence_kind,
      }),
    )
    .execute();
}

/** Records what a daily check reported, for many encoders of one server in one statement. */
export async function recordChecks(
  db: Db,
  serverId: string,
  checks: readonly Pick<EncoderTable, "encoder_id" | "firmware_version" | "highest_version_seen" | "licence_kind">[],
  at: Date,
): Promise<void> {
  if (checks.length === 0) return;
  const values = sql.join(
    checks.map((c) => sql`(${c.encoder_id}, ${c.firmware_version}, ${c.highest_version_seen}, ${c.licence_kind})`),
  );
  await sql`
    update ${sql.id(ALLOCATION_SCHEMA, "encoders")} as e
    set firmware_version = v.firmware_version, highest_version_seen = v.highest_version_seen,
        licence_kind = v.licence_kind, last_check_at = ${at}
    from (values ${values}) as v(encoder_id, firmware_version, highest_version_seen, licence_kind)
    where e.server_id = ${serverId} and e.encoder_id = v.encoder_id`.execute(db);
}
