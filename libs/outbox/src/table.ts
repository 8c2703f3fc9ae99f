import { sql, type Kysely } from "kysely";

/** The outbox as each producing service stores it, in its own schema. */
export interface OutboxTable {
  event_id: string;
  account_id: string;
  type: string;
  data: unknown;
  occurred_at: Date;
  delivered_at: Date | null;
  /** A relay is delivering this row until then; after it, another relay may take it over. */
  claimed_until: Date | null;
  attempts: number;
  /** W3C traceparent of the call that caused the event, so its delivery joins that trace. */
  trace_context: string | null;
}

/** Creates the outbox table; called from a producing service's migration. */
export async function createOutboxTable(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("outbox")
    .addColumn("event_id", "text", (c) => c.primaryKey())
    .addColumn("account_id", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("data", "jsonb", (c) => c.notNull())
    .addColumn("occurred_at", "timestamptz", (c) => c.notNull())
    .addColumn("delivered_at", "timestamptz")
    .addColumn("claimed_until", "timestamptz")
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex("outbox_undelivered")
    .on("outbox")
    .column("occurred_at")
    .where(sql.ref("delivered_at"), "is", null)
    .execute();
}

/** Adds the trace context column to an outbox made before it existed. */
export async function addOutboxTraceContext(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("outbox").addColumn("trace_context", "text").execute();
}
