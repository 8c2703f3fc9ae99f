import type { Kysely } from "kysely";
import { addOutboxTraceContext } from "@cls/outbox";

export async function up(db: Kysely<any>): Promise<void> {
  await addOutboxTraceContext(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("outbox").dropColumn("trace_context").execute();
}
