import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { NotificationSchema, type NotificationAdminService } from "@cls/proto";
import type { StoredEvent } from "./relay.js";

/** Delivery of outbox events to the notification service, which ignores ids it has seen. */
export function deliverToNotificationService(client: Client<typeof NotificationAdminService>, source: string) {
  return async (events: StoredEvent[]): Promise<void> => {
    await client.ingestEvents(
      {
        events: events.map((event) =>
          create(NotificationSchema, {
            eventId: event.eventId,
            accountId: event.accountId,
            type: event.type,
            occurredAt: timestampFromDate(event.occurredAt),
            dataJson: JSON.stringify(event.data),
            source,
          }),
        ),
      },
      { timeoutMs: 5_000 },
    );
  };
}
