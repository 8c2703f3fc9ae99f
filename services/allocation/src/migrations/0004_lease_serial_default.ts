import { sql, type Kysely } from "kysely";
import { ALLOCATION_SCHEMA } from "../database.js";

// Grants take their lease serial from the sequence inside the insert: one round trip fewer.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table ${sql.id(ALLOCATION_SCHEMA, "allocations")}
    alter column lease_serial set default nextval(${sql.lit(`${ALLOCATION_SCHEMA}.lease_serial`)}::regclass)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table ${sql.id(ALLOCATION_SCHEMA, "allocations")} alter column lease_serial drop default`.execute(db);
}
