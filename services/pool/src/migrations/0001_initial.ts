import { sql, type Kysely } from "kysely";
import { createAuditTable } from "@cls/audit";
import { createOutboxTable } from "@cls/outbox";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("accounts")
    .addColumn("account_id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("licence_types")
    .addColumn("licence_type", "text", (c) => c.primaryKey())
    .addColumn("description", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("encoder_models")
    .addColumn("model", "text", (c) => c.primaryKey())
    .addColumn("licence_type", "text", (c) => c.notNull().references("licence_types.licence_type"))
    .addColumn("kind", "text", (c) => c.notNull().check(sql`kind in ('hardware', 'container')`))
    .addColumn("min_v9_version", "text", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .addColumn("synced", "boolean", (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema
    .createTable("pools")
    .addColumn("pool_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull().references("accounts.account_id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("version", "bigint", (c) => c.notNull())
    .addColumn("synced_version", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("pools_account").on("pools").column("account_id").execute();
  await db.schema
    .createTable("pool_entitlements")
    .addColumn("pool_id", "text", (c) => c.notNull().references("pools.pool_id"))
    .addColumn("licence_type", "text", (c) => c.notNull().references("licence_types.licence_type"))
    .addColumn("total", "integer", (c) => c.notNull().check(sql`total >= 0`))
    .addPrimaryKeyConstraint("pool_entitlements_pk", ["pool_id", "licence_type"])
    .execute();
  await createAuditTable(db);
  await createOutboxTable(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["outbox", "audit", "pool_entitlements", "pools", "encoder_models", "licence_types", "accounts"]) {
    await db.schema.dropTable(table).execute();
  }
}
