import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { newId } from "@cls/db";
import { NotificationSchema, type Notification } from "@cls/proto";

/** Fields a test may change on an event. */
export type EventOverrides = Partial<Pick<Notification, "eventId" | "accountId" | "type" | "dataJson" | "source">> & { occurredAt?: Date };

/** A valid event as an outbox relay would send it; tests override what they need. */
export function anEvent(accountId: string, overrides: EventOverrides = {}): Notification {
  const { occurredAt, ...fields } = overrides;
  return create(NotificationSchema, {
    eventId: newId("evt"),
    accountId,
    type: "pool.usage_crossed",
    occurredAt: timestampFromDate(occurredAt ?? new Date("2030-01-01T00:00:00Z")),
    dataJson: JSON.stringify({ pool_id: newId("pool"), percent: 80 }),
    source: "allocation",
    ...fields,
  });
}

/** `count` events for one account, one minute apart, oldest first. */
export function eventSeries(accountId: string, count: number, start = new Date("2030-01-01T00:00:00Z")): Notification[] {
  return Array.from({ length: count }, (_, i) => anEvent(accountId, { occurredAt: new Date(start.getTime() + i * 60_000) }));
}
