import { sql, type Kysely } from "kysely";
import { newId } from "@cls/db";
import type { DeliveryTable, EventTable, NotificationDatabase, WebhookTable } from "./database.js";

type Db = Kysely<NotificationDatabase>;

/** Most live webhooks one account may have. */
export const MAX_WEBHOOKS_PER_ACCOUNT = 10;

/** A webhook as the API shows it: no signing secret. */
export interface WebhookView {
  webhook_id: string;
  account_id: string;
  url: string;
  event_types: string[];
  created_at: Date;
}

function eventTypesOf(value: unknown): string[] {
  const parsed = typeof value === "string" ? (JSON.parse(value) as unknown) : value;
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === "string") : [];
}

function toView(row: Pick<WebhookTable, "webhook_id" | "account_id" | "url" | "event_types" | "created_at">): WebhookView {
  return { webhook_id: row.webhook_id, account_id: row.account_id, url: row.url, event_types: eventTypesOf(row.event_types), created_at: row.created_at };
}

/**
 * Adds a webhook unless the account already has MAX_WEBHOOKS_PER_ACCOUNT live ones; returns
 * undefined then. Creations for one account are serialised, so racing calls cannot pass the cap.
 */
export async function insertWebhook(
  db: Db,
  input: { accountId: string; url: string; eventTypes: string[]; signingSecret: string; now: Date },
): Promise<WebhookView | undefined> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`cls-webhooks:${input.accountId}`}))`.execute(trx);
    const { n } = await trx
      .selectFrom("webhooks")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("account_id", "=", input.accountId)
      .where("deleted_at", "is", null)
      .executeTakeFirstOrThrow();
    if (Number(n) >= MAX_WEBHOOKS_PER_ACCOUNT) return undefined;
    const row = await trx
      .insertInto("webhooks")
      .values({
        webhook_id: newId("whk"),
        account_id: input.accountId,
        url: input.url,
        event_types: JSON.stringify(input.eventTypes),
        signing_secret: input.signingSecret,
        created_at: input.now,
        deleted_at: null,
      })
      .returning(["webhook_id", "account_id", "url", "event_types", "created_at"])
      .executeTakeFirstOrThrow();
    return toView(row);
  });
}

/** An account's live webhooks, oldest first. */
export async function listWebhooks(db: Db, accountId: string): Promise<WebhookView[]> {
  const rows = await db
    .selectFrom("webhooks")
    .select(["webhook_id", "account_id", "url", "event_types", "created_at"])
    .where("account_id", "=", accountId)
    .where("deleted_at", "is", null)
    .orderBy("created_at")
    .orderBy("webhook_id")
    .execute();
  return rows.map(toView);
}

/**
 * Deletes an account's live webhook (softly: its dead letters stay listable) and drops its
 * pending deliveries. False when the account has no such live webhook.
 */
export async function softDeleteWebhook(db: Db, accountId: string, webhookId: string, now: Date): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const deleted = await trx
      .updateTable("webhooks")
      .set({ deleted_at: now })
      .where("webhook_id", "=", webhookId)
      .where("account_id", "=", accountId)
      .where("deleted_at", "is", null)
      .returning("webhook_id")
      .executeTakeFirst();
    if (!deleted) return false;
    await trx.deleteFrom("deliveries").where("webhook_id", "=", webhookId).where("state", "=", "pending").execute();
    return true;
  });
}

/** Rows per insert statement: well below Postgres's limit on parameters. */
const INSERT_CHUNK = 1000;

/**
 * Queues a pending delivery of each event to each live webhook of its account that takes its
 * type (SPEC L15). Called in the transaction that stores the events, with only the events new
 * to it, so a redelivered event is never queued twice (the unique key guards it as well).
 */
export async function scheduleDeliveries(db: Db, events: readonly Pick<EventTable, "event_id" | "account_id" | "type">[], now: Date): Promise<number> {
  if (events.length === 0) return 0;
  const accounts = [...new Set(events.map((e) => e.account_id))];
  const webhooks = await db
    .selectFrom("webhooks")
    .select(["webhook_id", "account_id", "event_types"])
    .where("account_id", "in", accounts)
    .where("deleted_at", "is", null)
    .execute();
  if (webhooks.length === 0) return 0;
  const byAccount = new Map<string, { webhook_id: string; types: Set<string> }[]>();
  for (const w of webhooks) {
    const list = byAccount.get(w.account_id) ?? [];
    list.push({ webhook_id: w.webhook_id, types: new Set(eventTypesOf(w.event_types)) });
    byAccount.set(w.account_id, list);
  }
  const rows: DeliveryTable[] = [];
  for (const event of events) {
    for (const webhook of byAccount.get(event.account_id) ?? []) {
      if (webhook.types.size > 0 && !webhook.types.has(event.type)) continue;
      rows.push({
        delivery_id: newId("dlv"),
        webhook_id: webhook.webhook_id,
        event_id: event.event_id,
        account_id: event.account_id,
        state: "pending",
        attempts: 0,
        next_attempt_at: now,
        claimed_until: null,
        last_error: null,
        delivered_at: null,
        dead_at: null,
      });
    }
  }
  let queued = 0;
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const result = await db
      .insertInto("deliveries")
      .values(rows.slice(i, i + INSERT_CHUNK))
      .onConflict((oc) => oc.columns(["webhook_id", "event_id"]).doNothing())
      .executeTakeFirst();
    queued += Number(result.numInsertedOrUpdatedRows ?? 0);
  }
  return queued;
}

/** A delivery a worker has claimed, with what it needs to send it. */
export interface ClaimedDelivery {
  delivery_id: string;
  webhook_id: string;
  /** Attempts made before this one: the worker's proof that the delivery is still its own. */
  attempts: number;
  url: string;
  signing_secret: string;
  event: Pick<EventTable, "event_id" | "account_id" | "type" | "occurred_at" | "data">;
}

/**
 * Claims up to `limit` due deliveries of live webhooks until `claimUntil`, in a short
 * transaction (`FOR UPDATE SKIP LOCKED`, so replicas take different rows). A worker that dies
 * while sending leaves a claim that expires, and another worker sends the delivery again.
 */
export async function claimDueDeliveries(db: Db, now: Date, claimUntil: Date, limit: number): Promise<ClaimedDelivery[]> {
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom("deliveries")
      .select("delivery_id")
      .where("state", "=", "pending")
      .where("next_attempt_at", "<=", now)
      .where((eb) => eb.or([eb("claimed_until", "is", null), eb("claimed_until", "<", now)]))
      .where((eb) =>
        eb.exists(
          eb
            .selectFrom("webhooks")
            .select("webhooks.webhook_id")
            .whereRef("webhooks.webhook_id", "=", "deliveries.webhook_id")
            .where("webhooks.deleted_at", "is", null),
        ),
      )
      .orderBy("next_attempt_at")
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    if (due.length === 0) return [];
    const ids = due.map((row) => row.delivery_id);
    await trx.updateTable("deliveries").set({ claimed_until: claimUntil }).where("delivery_id", "in", ids).execute();
    const rows = await trx
      .selectFrom("deliveries")
      .innerJoin("webhooks", "webhooks.webhook_id", "deliveries.webhook_id")
      .innerJoin("events", "events.event_id", "deliveries.event_id")
      .select([
        "deliveries.delivery_id",
        "deliveries.webhook_id",
        "deliveries.attempts",
        "webhooks.url",
        "webhooks.signing_secret",
        "events.event_id",
        "events.account_id",
        "events.type",
        "events.occurred_at",
        "events.data",
      ])
      .where("deliveries.delivery_id", "in", ids)
      .orderBy("deliveries.next_attempt_at")
      .execute();
    return rows.map((row) => ({
      delivery_id: row.delivery_id,
      webhook_id: row.webhook_id,
      attempts: row.attempts,
      url: row.url,
      signing_secret: row.signing_secret,
      event: { event_id: row.event_id, account_id: row.account_id, type: row.type, occurred_at: row.occurred_at, data: row.data },
    }));
  });
}

/**
 * Records an attempt's outcome, only if the delivery is still pending at the attempt count
 * it was claimed with: of two workers that sent the same attempt (a claim that expired), one
 * records it. Returns whether this call recorded it.
 */
export async function recordAttempt(
  db: Db,
  claimed: Pick<ClaimedDelivery, "delivery_id" | "attempts">,
  outcome: { kind: "delivered"; at: Date } | { kind: "retry"; at: Date; error: string; nextAttemptAt: Date } | { kind: "dead"; at: Date; error: string },
): Promise<boolean> {
  const base = { attempts: claimed.attempts + 1, claimed_until: null };
  const set =
    outcome.kind === "delivered"
      ? { ...base, state: "delivered" as const, delivered_at: outcome.at, last_error: null }
      : outcome.kind === "retry"
        ? { ...base, next_attempt_at: outcome.nextAttemptAt, last_error: outcome.error }
        : { ...base, state: "dead" as const, dead_at: outcome.at, last_error: outcome.error };
  const result = await db
    .updateTable("deliveries")
    .set(set)
    .where("delivery_id", "=", claimed.delivery_id)
    .where("state", "=", "pending")
    .where("attempts", "=", claimed.attempts)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Drops pending deliveries of deleted webhooks that an ingest racing the deletion queued. */
export async function dropPendingOfDeletedWebhooks(db: Db): Promise<number> {
  const result = await db
    .deleteFrom("deliveries")
    .where("state", "=", "pending")
    .where("webhook_id", "in", (eb) => eb.selectFrom("webhooks").select("webhook_id").where("deleted_at", "is not", null))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** A dead delivery with its event. */
export interface DeadLetterRow {
  delivery_id: string;
  webhook_id: string;
  attempts: number;
  last_error: string | null;
  dead_at: Date;
  event: EventTable;
}

/** An account's dead letters, newest first (SPEC L15). */
export async function listDeadLetters(db: Db, accountId: string, limit: number): Promise<DeadLetterRow[]> {
  const rows = await db
    .selectFrom("deliveries")
    .innerJoin("events", "events.event_id", "deliveries.event_id")
    .select([
      "deliveries.delivery_id",
      "deliveries.webhook_id",
      "deliveries.attempts",
      "deliveries.last_error",
      "deliveries.dead_at",
      "events.event_id",
      "events.account_id",
      "events.type",
      "events.occurred_at",
      "events.data",
      "events.source",
      "events.received_at",
    ])
    .where("deliveries.account_id", "=", accountId)
    .where("deliveries.state", "=", "dead")
    .orderBy("deliveries.dead_at", "desc")
    .orderBy("deliveries.delivery_id", "desc")
    .limit(limit)
    .execute();
  return rows.map((row) => ({
    delivery_id: row.delivery_id,
    webhook_id: row.webhook_id,
    attempts: row.attempts,
    last_error: row.last_error,
    dead_at: row.dead_at!,
    event: {
      event_id: row.event_id,
      account_id: row.account_id,
      type: row.type,
      occurred_at: row.occurred_at,
      data: row.data,
      source: row.source,
      received_at: row.received_at,
    },
  }));
}
