import { context, propagation } from "@opentelemetry/api";
import type { Kysely } from "kysely";
import { newId } from "@cls/db";
import type { OutboxTable } from "./table.js";

/** An event for the customer's notifications (SPEC L15). */
export interface OutboxEvent {
  accountId: string;
  type: string;
  data: Record<string, unknown>;
  occurredAt: Date;
}

/**
 * Writes events in the caller's transaction, so they exist exactly when the change that
 * caused them does. Returns their stable ids.
 */
export async function recordEvents(trx: Kysely<any>, events: readonly OutboxEvent[]): Promise<string[]> {
  if (events.length === 0) return [];
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const rows = events.map((event) => ({
    event_id: newId("evt"),
    account_id: event.accountId,
    type: event.type,
    data: JSON.stringify(event.data),
    occurred_at: event.occurredAt,
    delivered_at: null,
    claimed_until: null,
    attempts: 0,
    trace_context: carrier.traceparent ?? null,
  }));
  await (trx as Kysely<{ outbox: OutboxTable }>).insertInto("outbox").values(rows).execute();
  return rows.map((row) => row.event_id);
}
