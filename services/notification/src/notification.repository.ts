import type { Kysely } from "kysely";
import type { EventTable, NotificationDatabase } from "./database.js";

type Db = Kysely<NotificationDatabase>;

/** An event ready to store; `data` is the JSON object it carries. */
export interface NewEvent extends Omit<EventTable, "data"> {
  data: Record<string, unknown>;
}

/**
 * Stores events, skipping ids already stored (delivery is at least once). Returns the events
 * that were new, each once, in the order given.
 */
export async function insertEvents(db: Db, events: readonly NewEvent[]): Promise<NewEvent[]> {
  if (events.length === 0) return [];
  const inserted = await db
    .insertInto("events")
    .values(events.map((event) => ({ ...event, data: JSON.stringify(event.data) })))
    .onConflict((oc) => oc.column("event_id").doNothing())
    .returning("event_id")
    .execute();
  const fresh = new Set(inserted.map((row) => row.event_id));
  return events.filter((event) => fresh.delete(event.event_id));
}

/** An account's events, newest first, optionally of one type. */
export async function listAccountEvents(db: Db, accountId: string, options: { limit: number; type?: string | undefined }): Promise<EventTable[]> {
  let query = db.selectFrom("events").selectAll().where("account_id", "=", accountId);
  if (options.type) query = query.where("type", "=", options.type);
  return query.orderBy("occurred_at", "desc").orderBy("event_id", "desc").limit(options.limit).execute();
}
