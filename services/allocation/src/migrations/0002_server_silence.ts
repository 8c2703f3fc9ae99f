import type { Kysely } from "kysely";

export async function up(db: Kysely<any>): Promise<void> {
  // When the customer was last told this server has gone silent; once per silence.
  await db.schema.alterTable("servers").addColumn("silence_notified_at", "timestamptz").execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable("servers").dropColumn("silence_notified_at").execute();
}
