import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NotificationSchema, type Notification } from "@cls/proto";
import type { EventTable } from "./database.js";

/** A stored event as the API shows it. */
export function toNotificationMessage(row: EventTable): Notification {
  return create(NotificationSchema, {
    eventId: row.event_id,
    accountId: row.account_id,
    type: row.type,
    occurredAt: timestampFromDate(row.occurred_at),
    dataJson: typeof row.data === "string" ? row.data : JSON.stringify(row.data),
    source: row.source,
  });
}
