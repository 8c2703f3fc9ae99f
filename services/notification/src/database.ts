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

/** A customer's endpoint that receives the account's events as signed POSTs (SPEC L15). */
export interface WebhookTable {
  /** `whk_…` */
  webhook_id: string;
  account_id: string;
  /** https://<host name>/…; never an IP address (SPEC L13). */
  url: string;
  /** A JSON array of event types; empty means every type. Written as its JSON text. */
  event_types: unknown;
  /** Key of the HMAC-SHA256 in `cls-signature`; shown to the customer once, at creation. */
  signing_secret: string;
  created_at: Date;
  /** Set when the customer deletes it; its pending deliveries stop. */
  deleted_at: Date | null;
}

export type DeliveryState = "pending" | "delivered" | "dead";

/** One event to one webhook, retried with backoff until delivered or dead (SPEC L15). */
export interface DeliveryTable {
  /** `dlv_…` */
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  account_id: string;
  state: DeliveryState;
  /** Attempts made so far. */
  attempts: number;
  /** When the next attempt is due (pending only). */
  next_attempt_at: Date;
  /** A worker is sending this delivery until then; after it, another worker may take it over. */
  claimed_until: Date | null;
  /** The last failure as a fixed phrase ("HTTP 500", "timeout"): never an address (SPEC L13). */
  last_error: string | null;
  delivered_at: Date | null;
  /** When it was given up on: the dead-letter list. */
  dead_at: Date | null;
}

export interface NotificationDatabase {
  events: EventTable;
  webhooks: WebhookTable;
  deliveries: DeliveryTable;
}
