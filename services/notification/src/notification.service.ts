import { randomBytes } from "node:crypto";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Clock } from "@cls/clock";
import { NotFoundError, ResourceExhaustedError } from "@cls/errors";
import type { NotificationService } from "@cls/proto";
import { requireCaller, requireCustomerCaller } from "@cls/server";
import { pageSize, requireId } from "@cls/validation";
import type { NotificationDatabase } from "./database.js";
import { requireEventType } from "./event.validation.js";
import { listAccountEvents } from "./notification.repository.js";
import { toNotificationMessage } from "./notification.mapping.js";
import { toDeadLetterMessage, toWebhookMessage } from "./webhook.mapping.js";
import { insertWebhook, listDeadLetters, listWebhooks, MAX_WEBHOOKS_PER_ACCOUNT, softDeleteWebhook } from "./webhook.repository.js";
import { requireWebhookEventTypes, requireWebhookUrl } from "./webhook.validation.js";

export interface NotificationServiceDeps {
  db: Kysely<NotificationDatabase>;
  clock: Clock;
  /** Development and tests only: accept `http:` and private host names as webhook targets. */
  allowPrivateTargets?: boolean;
}

/**
 * Public: the caller's own account's notifications, newest first (SPEC L14, L15), and — for
 * customers with an API key — the account's webhooks and their dead letters.
 */
export function createNotificationService(deps: NotificationServiceDeps): ServiceImpl<typeof NotificationService> {
  const { db, clock } = deps;
  const allowPrivateTargets = deps.allowPrivateTargets ?? false;
  return {
    async listNotifications(req, ctx) {
      const caller = requireCaller(ctx);
      const limit = pageSize("limit", req.limit, 50, 500);
      const type = req.type ? requireEventType("type", req.type) : undefined;
      const rows = await listAccountEvents(db, caller.accountId, { limit, type });
      return { notifications: rows.map(toNotificationMessage) };
    },

    // SPEC L15: delivery to the account's webhook endpoints, signed with a secret shown once.
    async createWebhook(req, ctx) {
      const caller = requireCustomerCaller(ctx);
      const url = requireWebhookUrl("url", req.url, allowPrivateTargets);
      const eventTypes = requireWebhookEventTypes("event_types", req.eventTypes);
      const signingSecret = randomBytes(32).toString("base64url");
      const webhook = await insertWebhook(db, { accountId: caller.accountId, url, eventTypes, signingSecret, now: clock.now() });
      if (!webhook) throw new ResourceExhaustedError(`an account may have at most ${MAX_WEBHOOKS_PER_ACCOUNT} webhooks: delete one first`);
      return { webhook: toWebhookMessage(webhook), signingSecret };
    },

    async listWebhooks(_req, ctx) {
      const caller = requireCustomerCaller(ctx);
      return { webhooks: (await listWebhooks(db, caller.accountId)).map(toWebhookMessage) };
    },

    // Another account's webhook is not_found, worded like an unknown one (SPEC L11).
    async deleteWebhook(req, ctx) {
      const caller = requireCustomerCaller(ctx);
      const webhookId = requireId("webhook_id", req.webhookId, "whk");
      if (!(await softDeleteWebhook(db, caller.accountId, webhookId, clock.now()))) throw new NotFoundError("webhook");
      return {};
    },

    async listDeadLetters(req, ctx) {
      const caller = requireCustomerCaller(ctx);
      const limit = pageSize("limit", req.limit, 50, 500);
      return { deadLetters: (await listDeadLetters(db, caller.accountId, limit)).map(toDeadLetterMessage) };
    },
  };
}
