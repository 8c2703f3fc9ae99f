import { metrics } from "@opentelemetry/api";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Clock } from "@cls/clock";
import { inSpan } from "@cls/telemetry";
import type { NotificationDatabase } from "./database.js";
import { MAX_DELIVERY_ATTEMPTS, retryDelayMs } from "./webhook.backoff.js";
import { claimDueDeliveries, dropPendingOfDeletedWebhooks, recordAttempt, type ClaimedDelivery } from "./webhook.repository.js";
import { DEFAULT_DELIVERY_TIMEOUT_MS, sendWebhook, type WebhookRequest, type WebhookResult } from "./webhook.sender.js";

export interface WebhookDeliveryOptions {
  db: Kysely<NotificationDatabase>;
  /** Schedules attempts and stamps signatures; HTTP timeouts use real time. */
  clock: Clock;
  logger: Logger;
  /** Development and tests only: deliver to `http:` and private addresses. */
  allowPrivateTargets?: boolean;
  /** Real-time limit of one attempt. */
  timeoutMs?: number;
  /** Deliveries claimed per pass. */
  batchSize?: number;
  /** Deliveries sent at once by one worker. */
  concurrency?: number;
  /** How long a claim lasts before another worker may take the delivery over. */
  claimMs?: number;
  /** Sends one request; tests may replace it. */
  send?: (request: WebhookRequest) => Promise<WebhookResult>;
  /** Jitter source for the backoff, like Math.random. */
  random?: () => number;
}

/** Outcomes counted in `cls_webhook_deliveries`: the only label (never a URL or address, SPEC L13). */
export type DeliveryOutcome = "delivered" | "retry" | "dead";

let deliveriesCounter: ReturnType<ReturnType<typeof metrics.getMeter>["createCounter"]> | undefined;

/** The `cls_webhook_deliveries` counter, created on first use from the global meter provider. */
function countDelivery(outcome: DeliveryOutcome): void {
  deliveriesCounter ??= metrics.getMeter("cls").createCounter("cls_webhook_deliveries", {
    description: "Webhook delivery attempts by outcome: delivered, retry (failed, will be retried), dead (failed the last attempt)",
  });
  deliveriesCounter.add(1, { outcome });
}

function errorCode(error: unknown): string {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : error instanceof Error ? error.name : "unknown";
}

export interface WebhookDeliveryWorker {
  /** Sends every delivery due now, until none is left; returns how many attempts it recorded. */
  runOnce(): Promise<number>;
}

/**
 * Delivers queued events to customers' webhooks (SPEC L15): claims due deliveries in a short
 * transaction, sends each with no transaction open, and records the outcome — delivered on a
 * 2xx; otherwise retried with backoff, and dead (the dead-letter list) after the last attempt.
 * Safe on several replicas at once: claims are row-locked and expire, and an outcome is
 * recorded only by the worker whose claim it still is. Delivery is at least once: a worker
 * that dies mid-send leaves the attempt to be sent again.
 */
export function createWebhookDeliveryWorker(options: WebhookDeliveryOptions): WebhookDeliveryWorker {
  const { db, clock, logger } = options;
  const batchSize = options.batchSize ?? 50;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const timeoutMs = options.timeoutMs ?? DEFAULT_DELIVERY_TIMEOUT_MS;
  // A whole batch must finish well within its claim, or another worker would send it again.
  const claimMs = options.claimMs ?? Math.max(60_000, 2 * timeoutMs * Math.ceil(batchSize / concurrency));
  const send = options.send ?? sendWebhook;
  const random = options.random ?? Math.random;
  const allowPrivateTargets = options.allowPrivateTargets ?? false;

  async function attempt(delivery: ClaimedDelivery): Promise<boolean> {
    const { event } = delivery;
    const data = (typeof event.data === "string" ? JSON.parse(event.data) : event.data) as Record<string, unknown>;
    const result = await inSpan("webhook.deliver", { "cls.webhook.attempt": delivery.attempts + 1 }, async (span) => {
      const sent = await send({
        url: delivery.url,
        signingSecret: delivery.signing_secret,
        payload: { event_id: event.event_id, account_id: event.account_id, type: event.type, occurred_at: event.occurred_at.toISOString(), data },
        now: clock.now(),
        timeoutMs,
        allowPrivateTargets,
      });
      span.setAttribute("cls.webhook.delivered", sent.ok);
      return sent;
    });
    const at = clock.now();
    const attempts = delivery.attempts + 1;
    const log = { delivery_id: delivery.delivery_id, webhook_id: delivery.webhook_id, event_id: event.event_id, attempts };
    let outcome: DeliveryOutcome;
    let recorded: boolean;
    if (result.ok) {
      outcome = "delivered";
      recorded = await recordAttempt(db, delivery, { kind: "delivered", at });
    } else if (attempts >= MAX_DELIVERY_ATTEMPTS) {
      outcome = "dead";
      recorded = await recordAttempt(db, delivery, { kind: "dead", at, error: result.error });
      if (recorded) logger.warn({ ...log, error: result.error }, "webhook delivery failed its last attempt; moved to the dead-letter list");
    } else {
      outcome = "retry";
      const nextAttemptAt = new Date(at.getTime() + retryDelayMs(attempts, random));
      recorded = await recordAttempt(db, delivery, { kind: "retry", at, error: result.error, nextAttemptAt });
      if (recorded) logger.info({ ...log, error: result.error, next_attempt_at: nextAttemptAt.toISOString() }, "webhook delivery failed; will retry");
    }
    if (recorded) countDelivery(outcome);
    else logger.debug(log, "webhook delivery attempt was already recorded by another worker");
    return recorded;
  }

  /** Runs `work` on every item, at most `concurrency` at a time. */
  async function eachLimited<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<void> {
    let next = 0;
    const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        try {
          await work(item);
        } catch (error) {
          // A database error leaves the claim to expire; the attempt is made again later. Only
          // the error's code is logged: a connection error's message names an address (SPEC L13).
          logger.warn({ err_code: errorCode(error) }, "recording a webhook delivery failed; it will be retried");
        }
      }
    });
    await Promise.all(lanes);
  }

  return {
    async runOnce() {
      await dropPendingOfDeletedWebhooks(db);
      let recorded = 0;
      for (;;) {
        const now = clock.now();
        const claimed = await claimDueDeliveries(db, now, new Date(now.getTime() + claimMs), batchSize);
        await eachLimited(claimed, async (delivery) => {
          if (await attempt(delivery)) recorded++;
        });
        if (claimed.length < batchSize) return recorded;
      }
    },
  };
}
