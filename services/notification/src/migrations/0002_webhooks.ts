import { sql, type Kysely } from "kysely";

/** Webhooks and their deliveries (SPEC L15). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("webhooks")
    .addColumn("webhook_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("url", "text", (c) => c.notNull())
    .addColumn("event_types", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("signing_secret", "text", (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("deleted_at", "timestamptz")
    .execute();
  await db.schema
    .createIndex("webhooks_live_by_account")
    .on("webhooks")
    .column("account_id")
    .where(sql.ref("deleted_at"), "is", null)
    .execute();

  await db.schema
    .createTable("deliveries")
    .addColumn("delivery_id", "text", (c) => c.primaryKey())
    .addColumn("webhook_id", "text", (c) => c.notNull().references("webhooks.webhook_id"))
    .addColumn("event_id", "text", (c) => c.notNull().references("events.event_id"))
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull().check(sql`state in ('pending', 'delivered', 'dead')`))
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "timestamptz", (c) => c.notNull())
    .addColumn("claimed_until", "timestamptz")
    .addColumn("last_error", "text")
    .addColumn("delivered_at", "timestamptz")
    .addColumn("dead_at", "timestamptz")
    .addUniqueConstraint("deliveries_webhook_event", ["webhook_id", "event_id"])
    .execute();
  await db.schema.createIndex("deliveries_due").on("deliveries").columns(["state", "next_attempt_at"]).execute();
  await db.schema
    .createIndex("deliveries_dead_by_account")
    .on("deliveries")
    .columns(["account_id", "dead_at desc"])
    .where(sql.ref("state"), "=", "dead")
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("deliveries").execute();
  await db.schema.dropTable("webhooks").execute();
}
