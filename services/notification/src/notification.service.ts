import type { ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { NotificationService } from "@cls/proto";
import { requireCaller } from "@cls/server";
import { pageSize } from "@cls/validation";
import type { NotificationDatabase } from "./database.js";
import { requireEventType } from "./event.validation.js";
import { listAccountEvents } from "./notification.repository.js";
import { toNotificationMessage } from "./notification.mapping.js";

/** Public: the caller's own account's notifications, newest first (SPEC L14, L15). */
export function createNotificationService(deps: { db: Kysely<NotificationDatabase> }): ServiceImpl<typeof NotificationService> {
  return {
    async listNotifications(req, ctx) {
      const caller = requireCaller(ctx);
      const limit = pageSize("limit", req.limit, 50, 500);
      const type = req.type ? requireEventType("type", req.type) : undefined;
      const rows = await listAccountEvents(deps.db, caller.accountId, { limit, type });
      return { notifications: rows.map(toNotificationMessage) };
    },
  };
}
