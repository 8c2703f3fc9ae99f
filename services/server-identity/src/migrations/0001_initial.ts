import { sql, type Kysely } from "kysely";
import { createAuditTable } from "@cls/audit";
import { createOutboxTable } from "@cls/outbox";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("enrollment_codes")
    .addColumn("code_hash", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("pool_id", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("used_at", "timestamptz")
    .addColumn("used_by_server_id", "text")
    .execute();
  await db.schema.createIndex("enrollment_codes_account").on("enrollment_codes").column("account_id").execute();
  await db.schema
    .createTable("servers")
    .addColumn("server_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("pool_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("public_key", "bytea", (c) => c.notNull().check(sql`octet_length(public_key) = 32`))
    .addColumn("state", "text", (c) => c.notNull().check(sql`state in ('active', 'revoked')`))
    .addColumn("enrolled_at", "timestamptz", (c) => c.notNull())
    .addColumn("revoked_at", "timestamptz")
    .addColumn("key_rotated_at", "timestamptz")
    .execute();
  await db.schema.createIndex("servers_account").on("servers").columns(["account_id", "enrolled_at"]).execute();
  await db.schema
    .createTable("challenges")
    .addColumn("challenge_id", "text", (c) => c.primaryKey())
    .addColumn("server_id", "text", (c) => c.notNull().references("servers.server_id"))
    .addColumn("nonce", "text", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("used_at", "timestamptz")
    .execute();
  await db.schema.createIndex("challenges_server_expiry").on("challenges").columns(["server_id", "expires_at"]).execute();
  await createAuditTable(db);
  await createOutboxTable(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["outbox", "audit", "challenges", "servers", "enrollment_codes"]) {
    await db.schema.dropTable(table).execute();
  }
}
