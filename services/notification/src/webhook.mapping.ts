import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeadLetterSchema, WebhookSchema, type DeadLetter, type Webhook } from "@cls/proto";
import { toNotificationMessage } from "./notification.mapping.js";
import type { DeadLetterRow, WebhookView } from "./webhook.repository.js";

/** A webhook as the API shows it; the signing secret is never part of it. */
export function toWebhookMessage(row: WebhookView): Webhook {
  return create(WebhookSchema, {
    webhookId: row.webhook_id,
    url: row.url,
    eventTypes: row.event_types,
    createdAt: timestampFromDate(row.created_at),
  });
}

/** A dead delivery with its event. */
export function toDeadLetterMessage(row: DeadLetterRow): DeadLetter {
  return create(DeadLetterSchema, {
    deliveryId: row.delivery_id,
    webhookId: row.webhook_id,
    event: toNotificationMessage(row.event),
    attempts: row.attempts,
    lastError: row.last_error ?? "",
    deadAt: timestampFromDate(row.dead_at),
  });
}
