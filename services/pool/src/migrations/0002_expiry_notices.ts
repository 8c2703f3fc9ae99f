import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // One row per notice sent for a pool's expiry instant: the key makes each notice once-only,
  // across replicas, and a moved expiry gets its own notices.
  await db.schema
    .createTable("expiry_notices")
    .addColumn("pool_id", "text", (c) => c.notNull().references("pools.pool_id"))
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("notice", "text", (c) => c.notNull())
    .addColumn("sent_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("expiry_notices_pk", ["pool_id", "expires_at", "notice"])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("expiry_notices").execute();
}
