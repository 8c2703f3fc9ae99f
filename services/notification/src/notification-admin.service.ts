import type { ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Clock } from "@cls/clock";
import type { NotificationAdminService } from "@cls/proto";
import { pageSize, requireId } from "@cls/validation";
import type { NotificationDatabase } from "./database.js";
import { requireEventType, requireEvents } from "./event.validation.js";
import { insertEvents, listAccountEvents } from "./notification.repository.js";
import { toNotificationMessage } from "./notification.mapping.js";
import { scheduleDeliveries } from "./webhook.repository.js";

export interface NotificationAdminDeps {
  db: Kysely<NotificationDatabase>;
  clock: Clock;
  logger: Logger;
}

/** Internal: the other services' outbox relays deliver events here; staff tools read them. */
export function createNotificationAdminService(deps: NotificationAdminDeps): ServiceImpl<typeof NotificationAdminService> {
  const { db } = deps;
  return {
    // SPEC L15: delivered at least once with a stable id, so a repeat is accepted and ignored.
    // Each new event is queued for the account's matching webhooks in the same transaction,
    // so an event stored is an event that will be delivered; a repeat queues nothing.
    async ingestEvents(req) {
      const receivedAt = deps.clock.now();
      const events = requireEvents(req.events, receivedAt);
      const accepted = await db.transaction().execute(async (trx) => {
        const fresh = await insertEvents(trx, events);
        await scheduleDeliveries(trx, fresh, receivedAt);
        return fresh.length;
      });
      if (accepted < events.length) deps.logger.debug({ received: events.length, accepted }, "ignored events already stored");
      return { accepted };
    },

    async listAccountNotifications(req) {
      const accountId = requireId("account_id", req.accountId, "acc");
      const limit = pageSize("limit", req.limit, 50, 500);
      const type = req.type ? requireEventType("type", req.type) : undefined;
      const rows = await listAccountEvents(db, accountId, { limit, type });
      return { notifications: rows.map(toNotificationMessage) };
    },
  };
}
