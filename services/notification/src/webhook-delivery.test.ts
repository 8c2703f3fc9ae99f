import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { newId, sql } from "@cls/db";
import { anEvent, eventSeries } from "./events.fixture.js";
import { MAX_DELIVERY_ATTEMPTS, RETRY_SCHEDULE_MS } from "./webhook.backoff.js";
import { refusingUrl, startNotificationHarness, startTestEndpoint, type NotificationHarness, type TestEndpoint } from "./webhook.fixture.js";

// SPEC L15: events go to the account's webhooks, signed, retried with backoff, dead-lettered
// after the last try, at least once with a stable event id. SPEC L13: no address is kept.

/** Every log line the module writes, to check none carries an address. */
const logLines: string[] = [];
const logger = pino(
  { level: "debug" },
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString("utf8"));
      done();
    },
  }),
);

/** IPv4 literals and the IPv6 loopback and mapped forms Node puts in its error messages. */
const ADDRESS_PATTERN = /\b\d{1,3}(\.\d{1,3}){3}\b|::1\b|::ffff:/i;

let h: NotificationHarness;
let endpoint: TestEndpoint;

beforeAll(async () => {
  h = await startNotificationHarness({ allowPrivateTargets: true, logger, deliveryTimeoutMs: 500 });
});

afterAll(async () => {
  await h?.close();
});

beforeEach(async () => {
  await endpoint?.close();
  endpoint = await startTestEndpoint();
  return () => endpoint.close();
});

interface DeliveryRow {
  delivery_id: string;
  webhook_id: string;
  event_id: string;
  state: string;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  delivered_at: Date | null;
  dead_at: Date | null;
}

async function deliveriesOf(accountId: string): Promise<DeliveryRow[]> {
  const { rows } = await sql<DeliveryRow>`select * from notification.deliveries where account_id = ${accountId} order by event_id, webhook_id`.execute(h.database.handle.root);
  return rows;
}

/** A webhook of a new account on `url` (the test endpoint by default), its secret given to the endpoint. */
async function subscribe(options: { accountId?: string; url?: string; eventTypes?: string[] } = {}) {
  const accountId = options.accountId ?? newId("acc");
  const customer = await h.asCustomer(accountId);
  const { webhook, signingSecret } = await customer.createWebhook({ url: options.url ?? endpoint.url, eventTypes: options.eventTypes ?? [] });
  if (!options.url) endpoint.secret = signingSecret;
  return { accountId, customer, webhookId: webhook!.webhookId, signingSecret };
}

function eventIdsReceived(): string[] {
  return endpoint.received.map((r) => r.headers["cls-event-id"] as string);
}

describe("webhook delivery", () => {
  it("POSTs a new event as signed JSON with its event id, and records it delivered", async () => {
    const { accountId } = await subscribe();
    const event = anEvent(accountId, { type: "licence.revoked", dataJson: JSON.stringify({ allocation_id: newId("alloc"), reason: "pool_expired" }) });
    await h.admin.ingestEvents({ events: [event] });
    await h.module.runJobs!();

    expect(endpoint.received).toHaveLength(1);
    const [received] = endpoint.received;
    expect(received!.headers["content-type"]).toBe("application/json");
    expect(received!.headers["cls-event-id"]).toBe(event.eventId);
    expect(received!.signatureValid).toBe(true);
    expect(received!.signedAt).toBe(Math.floor(h.clock.now().getTime() / 1000));
    expect(JSON.parse(received!.body)).toEqual({
      event_id: event.eventId,
      account_id: accountId,
      type: "licence.revoked",
      occurred_at: "2030-01-01T00:00:00.000Z",
      data: JSON.parse(event.dataJson),
    });

    const [row] = await deliveriesOf(accountId);
    expect(row).toMatchObject({ event_id: event.eventId, state: "delivered", attempts: 1, last_error: null });
    expect(row!.delivered_at).toEqual(h.clock.now());

    // Delivered once: later runs send nothing more.
    h.clock.advance(24 * 3600_000);
    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(1);
  });

  it("sends a webhook only its event types and its own account's events; empty types mean all", async () => {
    const accountId = newId("acc");
    const all = await startTestEndpoint("/all");
    try {
      await subscribe({ accountId, eventTypes: ["licence.revoked", "pool.expired"] });
      const customer = await h.asCustomer(accountId);
      all.secret = (await customer.createWebhook({ url: all.url })).signingSecret;

      const revoked = anEvent(accountId, { type: "licence.revoked" });
      const crossed = anEvent(accountId, { type: "pool.usage_crossed" });
      const foreign = anEvent(newId("acc"), { type: "licence.revoked" });
      await h.admin.ingestEvents({ events: [revoked, crossed, foreign] });
      await h.module.runJobs!();

      expect(eventIdsReceived()).toEqual([revoked.eventId]);
      expect(all.received.map((r) => r.headers["cls-event-id"]).sort()).toEqual([revoked.eventId, crossed.eventId].sort());
      expect(all.received.every((r) => r.signatureValid)).toBe(true);
      expect(await deliveriesOf(foreign.accountId)).toEqual([]);
    } finally {
      await all.close();
    }
  });

  it("queues no second delivery when an event is ingested again, before or after it was delivered", async () => {
    const { accountId } = await subscribe();
    const event = anEvent(accountId);
    await h.admin.ingestEvents({ events: [event, event] });
    await h.admin.ingestEvents({ events: [event] });
    expect(await deliveriesOf(accountId)).toHaveLength(1);

    await h.module.runJobs!();
    await h.admin.ingestEvents({ events: [event] });
    await h.module.runJobs!();
    expect(eventIdsReceived()).toEqual([event.eventId]);
    expect(await deliveriesOf(accountId)).toHaveLength(1);
  });

  it("retries a failing endpoint on the backoff schedule and dead-letters it after the last attempt", async () => {
    endpoint.behaviour = 500;
    const { accountId, customer, webhookId } = await subscribe();
    const event = anEvent(accountId);
    await h.admin.ingestEvents({ events: [event] });

    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(1);
    for (let failed = 1; failed < MAX_DELIVERY_ATTEMPTS; failed++) {
      const [row] = await deliveriesOf(accountId);
      expect(row).toMatchObject({ state: "pending", attempts: failed, last_error: "HTTP 500" });
      const wait = row!.next_attempt_at.getTime() - h.clock.now().getTime();
      const scheduled = RETRY_SCHEDULE_MS[failed - 1]!;
      expect(wait).toBeGreaterThanOrEqual(scheduled * 0.9);
      expect(wait).toBeLessThanOrEqual(scheduled * 1.1);

      // Not before it is due…
      h.clock.advance(wait - 1);
      await h.module.runJobs!();
      expect(endpoint.received).toHaveLength(failed);
      // …and once it is.
      h.clock.advance(1);
      await h.module.runJobs!();
      expect(endpoint.received).toHaveLength(failed + 1);
    }

    const [dead] = await deliveriesOf(accountId);
    expect(dead).toMatchObject({ state: "dead", attempts: MAX_DELIVERY_ATTEMPTS, last_error: "HTTP 500" });
    expect(dead!.dead_at).toEqual(h.clock.now());
    expect(endpoint.received.every((r) => r.signatureValid && r.headers["cls-event-id"] === event.eventId)).toBe(true);

    h.clock.advance(7 * 24 * 3600_000);
    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(MAX_DELIVERY_ATTEMPTS);

    const { deadLetters } = await customer.listDeadLetters({});
    expect(deadLetters).toHaveLength(1);
    const [letter] = deadLetters;
    expect(letter).toMatchObject({ deliveryId: dead!.delivery_id, webhookId, attempts: MAX_DELIVERY_ATTEMPTS, lastError: "HTTP 500" });
    expect(letter!.event).toMatchObject({ eventId: event.eventId, accountId, type: event.type, source: "allocation" });
    expect(JSON.parse(letter!.event!.dataJson)).toEqual(JSON.parse(event.dataJson));
    expect(letter!.deadAt!.seconds).toBe(BigInt(Math.floor(dead!.dead_at!.getTime() / 1000)));
  });

  it("delivers on a later attempt once the endpoint recovers", async () => {
    endpoint.behaviour = () => (endpoint.received.length <= 2 ? 503 : 200);
    const { accountId, customer } = await subscribe();
    await h.admin.ingestEvents({ events: [anEvent(accountId)] });
    for (let i = 0; i < 3; i++) {
      await h.module.runJobs!();
      h.clock.advance(RETRY_SCHEDULE_MS[i]! * 1.1);
    }
    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(3);
    const [row] = await deliveriesOf(accountId);
    expect(row).toMatchObject({ state: "delivered", attempts: 3, last_error: null });
    expect((await customer.listDeadLetters({})).deadLetters).toEqual([]);
  });

  it("does not follow a redirect: it is a failure", async () => {
    endpoint.behaviour = 307;
    const { accountId } = await subscribe();
    await h.admin.ingestEvents({ events: [anEvent(accountId)] });
    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(1);
    expect((await deliveriesOf(accountId))[0]).toMatchObject({ state: "pending", attempts: 1, last_error: "HTTP 307" });
  });

  // SPEC L13: Node's errors name the address (127.0.0.1:port); only fixed words are kept.
  it("records a refused connection and a timeout as fixed words, with no address in the database or the logs", async () => {
    endpoint.behaviour = "hang";
    const accountId = newId("acc");
    const refusedHook = await subscribe({ accountId, url: await refusingUrl() });
    const hangingHook = await subscribe({ accountId });
    await h.admin.ingestEvents({ events: [anEvent(accountId)] });
    await h.module.runJobs!();

    const rows = await deliveriesOf(accountId);
    expect(rows.find((r) => r.webhook_id === refusedHook.webhookId)).toMatchObject({ state: "pending", attempts: 1, last_error: "connection refused" });
    expect(rows.find((r) => r.webhook_id === hangingHook.webhookId)).toMatchObject({ state: "pending", attempts: 1, last_error: "timeout" });

    const { rows: dump } = await sql<{ text: string }>`select t::text as text from notification.deliveries t union all select w::text from notification.webhooks w`.execute(
      h.database.handle.root,
    );
    expect(dump.length).toBeGreaterThan(0);
    expect(dump.filter((r) => ADDRESS_PATTERN.test(r.text))).toEqual([]);
    expect(logLines.some((line) => line.includes("will retry"))).toBe(true);
    expect(logLines.filter((line) => ADDRESS_PATTERN.test(line))).toEqual([]);
  });

  it("stops the pending deliveries of a deleted webhook and queues none for it", async () => {
    endpoint.behaviour = 500;
    const { accountId, customer, webhookId } = await subscribe();
    await h.admin.ingestEvents({ events: [anEvent(accountId)] });
    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(1);

    await customer.deleteWebhook({ webhookId });
    await h.admin.ingestEvents({ events: [anEvent(accountId)] });
    h.clock.advance(3600_000);
    await h.module.runJobs!();
    expect(endpoint.received).toHaveLength(1);
    expect(await deliveriesOf(accountId)).toEqual([]);
  });

  it("sends each delivery once per attempt when two workers run at the same time", async () => {
    endpoint.behaviour = 500;
    const { accountId } = await subscribe();
    const other = h.replica({ logger: logger.child({ replica: "other" }) });
    const events = eventSeries(accountId, 120);
    const logsBefore = logLines.length;
    await h.admin.ingestEvents({ events });
    const countsOf = () => {
      const counts = new Map<string, number>();
      for (const id of eventIdsReceived()) counts.set(id, (counts.get(id) ?? 0) + 1);
      return counts;
    };

    await Promise.all([h.module.runJobs!(), other.runJobs!(), h.module.runJobs!(), other.runJobs!()]);
    expect(endpoint.received).toHaveLength(events.length);
    expect([...countsOf().values()].every((n) => n === 1)).toBe(true);
    // Both workers took a share of the work.
    const retries = logLines.slice(logsBefore).filter((l) => l.includes("will retry"));
    const byOther = retries.filter((l) => l.includes('"replica":"other"')).length;
    expect(retries).toHaveLength(events.length);
    expect(byOther).toBeGreaterThan(0);
    expect(byOther).toBeLessThan(events.length);

    endpoint.behaviour = 200;
    h.clock.advance(RETRY_SCHEDULE_MS[0]! * 1.1);
    await Promise.all([h.module.runJobs!(), other.runJobs!()]);
    expect(endpoint.received).toHaveLength(2 * events.length);
    expect([...countsOf().values()].every((n) => n === 2)).toBe(true);
    const rows = await deliveriesOf(accountId);
    expect(rows.every((r) => r.state === "delivered" && r.attempts === 2)).toBe(true);
  });
});
