import { InvalidArgumentError } from "@cls/errors";
import type { Notification } from "@cls/proto";
import { requireId, requireListSize, requireSlug, requireTimestamp } from "@cls/validation";
import type { NewEvent } from "./notification.repository.js";

/** Most events one IngestEvents call may carry. */
export const MAX_EVENTS_PER_CALL = 1000;
/** Largest `data_json`, in bytes of UTF-8. */
export const MAX_DATA_BYTES = 16 * 1024;

const EVENT_ID_PATTERN = /^evt_[0-9a-f]{32}$/;
const TYPE_PATTERN = /^[a-z][a-z0-9_.]{0,63}$/;

/** An event type such as `pool.usage_crossed`. */
export function requireEventType(field: string, value: string): string {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (!TYPE_PATTERN.test(value)) {
    throw new InvalidArgumentError(field, "must be 1 to 64 of a-z, 0-9, '_' or '.', starting with a letter");
  }
  return value;
}

function requireDataObject(field: string, value: string): Record<string, unknown> {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (Buffer.byteLength(value, "utf8") > MAX_DATA_BYTES) throw new InvalidArgumentError(field, `must be at most ${MAX_DATA_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(field, "must be valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(field, "must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

function requireEvent(field: string, event: Notification, receivedAt: Date): NewEvent {
  if (event.eventId === "") throw new InvalidArgumentError(`${field}.event_id`, "is required");
  if (!EVENT_ID_PATTERN.test(event.eventId)) throw new InvalidArgumentError(`${field}.event_id`, "must be an evt_ id");
  return {
    event_id: event.eventId,
    account_id: requireId(`${field}.account_id`, event.accountId, "acc"),
    type: requireEventType(`${field}.type`, event.type),
    occurred_at: requireTimestamp(`${field}.occurred_at`, event.occurredAt),
    data: requireDataObject(`${field}.data_json`, event.dataJson),
    source: requireSlug(`${field}.source`, event.source),
    received_at: receivedAt,
  };
}

/** Checks a whole batch before anything is written: one bad event refuses all of them. */
export function requireEvents(events: readonly Notification[], receivedAt: Date): NewEvent[] {
  requireListSize("events", events, MAX_EVENTS_PER_CALL);
  return events.map((event, index) => requireEvent(`events[${index}]`, event, receivedAt));
}
