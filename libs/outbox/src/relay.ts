import { context, propagation, ROOT_CONTEXT } from "@opentelemetry/api";
import type { Kysely } from "kysely";
import { inSpan, observeGauge } from "@cls/telemetry";
import type { Logger } from "pino";
import type { Clock } from "@cls/clock";
import type { OutboxTable } from "./table.js";

/** An event as the relay hands it to delivery, with its stable id. */
export interface StoredEvent {
  eventId: string;
  accountId: string;
  type: string;
  data: Record<string, unknown>;
  occurredAt: Date;
}

export interface OutboxRelayOptions {
  /** A service database with an `outbox` table. */
  db: Kysely<any>;
  /** Must be idempotent by event id: a crash after delivery and before marking redelivers. */
  deliver(events: StoredEvent[]): Promise<void>;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
  batchSize?: number;
  /** The producing service, as a metric label. */
  source: string;
  /** How long a relay owns a batch it is delivering before another may retry it. */
  claimMs?: number;
}

export interface OutboxRelay {
  /** Delivers what is pending now; resolves when done. Safe to call concurrently and from many replicas. */
  flush(): Promise<number>;
  /** Asks for a flush soon, without waiting for it. */
  kick(): void;
  stop(): Promise<void>;
}

/** Relays outbox rows at least once. Replicas share the work through expiring claims. */
export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const db = options.db as Kysely<{ outbox: OutboxTable }>;
  const { logger } = options;
  const batchSize = options.batchSize ?? 200;
  const claimMs = options.claimMs ?? 30_000;
  let running: Promise<number> | undefined;
  let stopped = false;

  /**
   * Claims a batch in a short transaction, delivers it with no transaction open (a delivery
   * may call a service that needs this same database), then marks it delivered. A relay that
   * dies mid-delivery leaves a claim that expires, and another relay delivers the rows again.
   */
  async function deliverBatch(): Promise<number> {
    const now = options.clock.now();
    const claimed = await db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom("outbox")
        .selectAll()
        .where("delivered_at", "is", null)
        .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
        .orderBy("occurred_at")
        .limit(batchSize)
        .forUpdate()
        .skipLocked()
        .execute();
      if (rows.length === 0) return rows;
      await trx
        .updateTable("outbox")
        .set({ claimed_until: new Date(now.getTime() + claimMs) })
        .where("event_id", "in", rows.map((row) => row.event_id))
        .execute();
      return rows;
    });
    if (claimed.length === 0) return 0;
    const ids = claimed.map((row) => row.event_id);
    try {
      // Each cause's events are delivered inside its trace, so one trace shows a call end to end.
      for (const [traceparent, rows] of groupByTrace(claimed)) {
        const parent = traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
        await context.with(parent, () =>
          inSpan("outbox.relay", { "cls.outbox.events": rows.length }, () =>
            options.deliver(
              rows.map((row) => ({
                eventId: row.event_id,
                accountId: row.account_id,
                type: row.type,
                data: (typeof row.data === "string" ? JSON.parse(row.data) : row.data) as Record<string, unknown>,
                occurredAt: row.occurred_at,
              })),
            ),
          ),
        );
      }
    } catch (error) {
      await db
        .updateTable("outbox")
        .set((eb) => ({ attempts: eb("attempts", "+", 1), claimed_until: null }))
        .where("event_id", "in", ids)
        .execute();
      throw error;
    }
    await db.updateTable("outbox").set({ delivered_at: options.clock.now(), claimed_until: null }).where("event_id", "in", ids).execute();
    return claimed.length;
  }

  async function flushAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const delivered = await deliverBatch();
      total += delivered;
      if (delivered < batchSize) return total;
    }
  }

  let queued: Promise<number> | undefined;

  /** Resolves after a pass that started after this call, so nothing recorded before it is missed. */
  function flush(): Promise<number> {
    if (queued) return queued;
    const next: Promise<number> = (running ?? Promise.resolve(0))
      .catch(() => 0)
      .then(() => {
        queued = undefined;
        const pass = flushAll().finally(() => {
          if (running === pass) running = undefined;
        });
        running = pass;
        return pass;
      });
    queued = next;
    return next;
  }

  const report = (error: unknown) => logger.warn({ err: error }, "outbox delivery failed; will retry");
  const stopLagGauge = observeGauge("cls_outbox_lag_seconds", "Age of the oldest undelivered outbox event", async () => {
    const oldest = await db.selectFrom("outbox").select((eb) => eb.fn.min("occurred_at").as("oldest")).where("delivered_at", "is", null).executeTakeFirst();
    const lag = oldest?.oldest ? Math.max(0, (options.clock.now().getTime() - new Date(oldest.oldest).getTime()) / 1000) : 0;
    return [{ value: lag, attributes: { source: options.source } }];
  });
  const timer = setInterval(() => {
    if (!stopped) flush().catch(report);
  }, options.intervalMs ?? 1_000);
  timer.unref();

  return {
    flush,
    kick() {
      if (!stopped) flush().catch(report);
    },
    async stop() {
      stopped = true;
      stopLagGauge();
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}

function groupByTrace<T extends { trace_context: string | null }>(rows: readonly T[]): Map<string | null, T[]> {
  const groups = new Map<string | null, T[]>();
  for (const row of rows) {
    const group = groups.get(row.trace_context);
    if (group) group.push(row);
    else groups.set(row.trace_context, [row]);
  }
  return groups;
}
