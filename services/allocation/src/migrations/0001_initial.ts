import { sql, type Kysely } from "kysely";
import { createAuditTable } from "@cls/audit";
import { createOutboxTable } from "@cls/outbox";
import { ALLOCATION_SCHEMA } from "../database.js";

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("servers")
    .addColumn("server_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("pool_id", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull().check(sql`state in ('active', 'revoked')`))
    .addColumn("bound_at", "timestamptz", (c) => c.notNull())
    .addColumn("revoked_at", "timestamptz")
    .addColumn("last_check_at", "timestamptz")
    .execute();
  await db.schema.createIndex("servers_account").on("servers").column("account_id").execute();
  await db.schema
    .createTable("pools")
    .addColumn("pool_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("version", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("pool_usage")
    .addColumn("pool_id", "text", (c) => c.notNull().references("pools.pool_id"))
    .addColumn("licence_type", "text", (c) => c.notNull())
    .addColumn("capacity", "integer", (c) => c.notNull().check(sql`capacity >= 0`))
    .addColumn("used", "integer", (c) => c.notNull().defaultTo(0).check(sql`used >= 0`))
    .addColumn("fence", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("pool_usage_pk", ["pool_id", "licence_type"])
    .execute();
  await db.schema
    .createTable("encoder_models")
    .addColumn("model", "text", (c) => c.primaryKey())
    .addColumn("licence_type", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("min_v9_version", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("encoders")
    .addColumn("server_id", "text", (c) => c.notNull().references("servers.server_id"))
    .addColumn("encoder_id", "text", (c) => c.notNull())
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("firmware_version", "text", (c) => c.notNull())
    .addColumn("highest_version_seen", "text", (c) => c.notNull())
    .addColumn("licence_kind", "text", (c) => c.notNull().check(sql`licence_kind in ('pool', 'legacy')`))
    .addColumn("registered_at", "timestamptz", (c) => c.notNull())
    .addColumn("last_check_at", "timestamptz")
    .addPrimaryKeyConstraint("encoders_pk", ["server_id", "encoder_id"])
    .execute();
  await db.schema
    .createTable("allocations")
    .addColumn("allocation_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("pool_id", "text")
    .addColumn("server_id", "text", (c) => c.notNull())
    .addColumn("encoder_id", "text", (c) => c.notNull())
    .addColumn("camera_id", "text", (c) => c.notNull())
    .addColumn("licence_type", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull().check(sql`kind in ('pool', 'legacy')`))
    .addColumn("state", "text", (c) => c.notNull().check(sql`state in ('active', 'released', 'revoked', 'reclaimed')`))
    .addColumn("acquired_at", "timestamptz", (c) => c.notNull())
    .addColumn("lease_serial", "bigint", (c) => c.notNull())
    .addColumn("lease_expires_at", "timestamptz")
    .addColumn("ended_at", "timestamptz")
    .addColumn("end_reason", "text")
    .addColumn("grant_seq", "bigserial", (c) => c.notNull())
    .execute();
  // Idempotency (SPEC L7): one active allocation per camera of an encoder of a server.
  await db.schema
    .createIndex("allocations_one_active_per_camera")
    .on("allocations")
    .columns(["server_id", "encoder_id", "camera_id"])
    .unique()
    .where(sql.ref("state"), "=", "active")
    .execute();
  await db.schema
    .createIndex("allocations_active_by_pool")
    .on("allocations")
    .columns(["pool_id", "licence_type", "grant_seq"])
    .where(sql.ref("state"), "=", "active")
    .execute();
  await db.schema
    .createIndex("allocations_active_by_lease_expiry")
    .on("allocations")
    .column("lease_expires_at")
    .where(sql.ref("state"), "=", "active")
    .execute();
  await db.schema.createIndex("allocations_account").on("allocations").columns(["account_id", "acquired_at"]).execute();
  await sql`create sequence ${sql.id(ALLOCATION_SCHEMA, "lease_serial")}`.execute(db);
  await createAuditTable(db);
  await createOutboxTable(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop sequence ${sql.id(ALLOCATION_SCHEMA, "lease_serial")}`.execute(db);
  for (const table of ["outbox", "audit", "allocations", "encoders", "encoder_models", "pool_usage", "pools", "servers"]) {
    await db.schema.dropTable(table).execute();
  }
}
