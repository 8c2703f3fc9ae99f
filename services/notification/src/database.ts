/** The notification service's schema. */
export const NOTIFICATION_SCHEMA = "notification";

export interface EventTable {
  /** Stable across redeliveries: the key that makes ingestion idempotent (SPEC L15). */
  event_id: string;
  account_id: string;
  type: string;
  occurred_at: Date;
  /** A JSON object; written as its JSON text, read back parsed. */
  data: unknown;
  /** The service that recorded the event. */
  source: string;
  received_at: Date;
}

export interface NotificationDatabase {
  events: EventTable;
}
