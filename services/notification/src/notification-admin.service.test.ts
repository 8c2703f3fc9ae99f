import { Code, ConnectError, createClient, createRouterTransport, type Client } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "@cls/clock";
import { newId, sql } from "@cls/db";
import { NotificationAdminService } from "@cls/proto";
import { errorInterceptor } from "@cls/server";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { anEvent, eventSeries, type EventOverrides } from "./events.fixture.js";
import { createNotificationModule, migrateNotification } from "./module.js";

const logger = pino({ level: "silent" });
let database: TestDatabase;
let admin: Client<typeof NotificationAdminService>;

beforeAll(async () => {
  database = await createTestDatabase();
  await migrateNotification(database.handle.root);
  const module = createNotificationModule({ root: database.handle.root, clock: new ManualClock(), logger });
  const transport = createRouterTransport(
    (router) => {
      for (const binding of module.internalServices) router.service(binding.service, binding.impl);
    },
    { router: { interceptors: [errorInterceptor(logger)] } },
  );
  admin = createClient(NotificationAdminService, transport);
});

afterAll(async () => {
  await database?.drop();
});

async function storedEventCount(accountId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from notification.events where account_id = ${accountId}`.execute(database.handle.root);
  return rows[0]!.n;
}

async function rejection(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

describe("IngestEvents", () => {
  it("stores events that the account's listing returns newest first with every field intact", async () => {
    const accountId = newId("acc");
    const [older, newer] = eventSeries(accountId, 2);
    const { accepted } = await admin.ingestEvents({ events: [older!, newer!] });
    expect(accepted).toBe(2);

    const { notifications } = await admin.listAccountNotifications({ accountId });
    expect(notifications.map((n) => n.eventId)).toEqual([newer!.eventId, older!.eventId]);
    const listed = notifications[1]!;
    expect(listed.accountId).toBe(accountId);
    expect(listed.type).toBe(older!.type);
    expect(listed.source).toBe("allocation");
    expect(listed.occurredAt).toEqual(older!.occurredAt);
    expect(JSON.parse(listed.dataJson)).toEqual(JSON.parse(older!.dataJson));
  });

  // SPEC L15: delivery is at least once with a stable event id.
  it("accepts a redelivered event id without storing it again, counting only new events", async () => {
    const accountId = newId("acc");
    const first = anEvent(accountId, { dataJson: JSON.stringify({ version: 1 }) });
    const second = anEvent(accountId);
    expect((await admin.ingestEvents({ events: [first, second] })).accepted).toBe(2);

    const redelivered = { ...first, dataJson: JSON.stringify({ version: 2 }) };
    const third = anEvent(accountId);
    expect((await admin.ingestEvents({ events: [redelivered, third] })).accepted).toBe(1);
    expect((await admin.ingestEvents({ events: [third, third] })).accepted).toBe(0);

    expect(await storedEventCount(accountId)).toBe(3);
    const { notifications } = await admin.listAccountNotifications({ accountId });
    const kept = notifications.find((n) => n.eventId === first.eventId)!;
    expect(JSON.parse(kept.dataJson)).toEqual({ version: 1 });
  });

  it("counts an id repeated within one batch once", async () => {
    const accountId = newId("acc");
    const event = anEvent(accountId);
    expect((await admin.ingestEvents({ events: [event, event] })).accepted).toBe(1);
    expect(await storedEventCount(accountId)).toBe(1);
  });

  const invalid: Array<[string, () => EventOverrides, string]> = [
    ["a malformed event id", () => ({ eventId: "evt_123" }), "events[1].event_id: must be an evt_ id"],
    ["a missing event id", () => ({ eventId: "" }), "events[1].event_id: is required"],
    ["an account id of the wrong kind", () => ({ accountId: newId("pool") }), "events[1].account_id: must be a acc_ id"],
    ["a type that is not a dotted name", () => ({ type: "Pool Expired" }), "events[1].type: must be 1 to 64 of a-z, 0-9, '_' or '.', starting with a letter"],
    ["data that is not JSON", () => ({ dataJson: "{oops" }), "events[1].data_json: must be valid JSON"],
    ["data that is a JSON array", () => ({ dataJson: "[1,2]" }), "events[1].data_json: must be a JSON object"],
    ["data larger than 16 KiB", () => ({ dataJson: JSON.stringify({ blob: "x".repeat(16 * 1024) }) }), "events[1].data_json: must be at most 16384 bytes"],
    ["a source that is not a slug", () => ({ source: "Pool Service" }), "events[1].source: must be 1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"],
  ];

  it.each(invalid)("refuses the whole batch for %s, naming the event's index and field", async (_name, override, message) => {
    const accountId = newId("acc");
    const bad = anEvent(accountId, override());
    const error = await rejection(admin.ingestEvents({ events: [anEvent(accountId), bad, anEvent(accountId)] }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe(message);
    expect(await storedEventCount(accountId)).toBe(0);
  });

  it("refuses an event without occurred_at", async () => {
    const accountId = newId("acc");
    const bad = anEvent(accountId);
    bad.occurredAt = undefined;
    const error = await rejection(admin.ingestEvents({ events: [anEvent(accountId), bad] }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("events[1].occurred_at: is required");
    expect(await storedEventCount(accountId)).toBe(0);
  });

  it("refuses more than 1000 events in one call and stores none of them", async () => {
    const accountId = newId("acc");
    const error = await rejection(admin.ingestEvents({ events: eventSeries(accountId, 1001) }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("events: must have at most 1000 items");
    expect(await storedEventCount(accountId)).toBe(0);
  });

  it("stores a batch of exactly 1000 events", async () => {
    const accountId = newId("acc");
    expect((await admin.ingestEvents({ events: eventSeries(accountId, 1000) })).accepted).toBe(1000);
    expect(await storedEventCount(accountId)).toBe(1000);
  });
});

describe("ListAccountNotifications", () => {
  it("returns only events of the requested type", async () => {
    const accountId = newId("acc");
    const crossed = anEvent(accountId, { type: "pool.usage_crossed" });
    const revoked = anEvent(accountId, { type: "licence.revoked" });
    await admin.ingestEvents({ events: [crossed, revoked] });

    const { notifications } = await admin.listAccountNotifications({ accountId, type: "licence.revoked" });
    expect(notifications.map((n) => n.eventId)).toEqual([revoked.eventId]);
  });

  it("never returns another account's events", async () => {
    const mine = newId("acc");
    const theirs = newId("acc");
    await admin.ingestEvents({ events: [anEvent(mine), anEvent(theirs), anEvent(theirs)] });

    const { notifications } = await admin.listAccountNotifications({ accountId: mine });
    expect(notifications).toHaveLength(1);
    expect(notifications.every((n) => n.accountId === mine)).toBe(true);
  });

  it("returns 50 by default, up to 500 on request, and refuses a limit outside 1 to 500", async () => {
    const accountId = newId("acc");
    const events = eventSeries(accountId, 501);
    await admin.ingestEvents({ events });
    const newestFirst = events.map((e) => e.eventId).reverse();

    expect((await admin.listAccountNotifications({ accountId })).notifications.map((n) => n.eventId)).toEqual(newestFirst.slice(0, 50));
    expect((await admin.listAccountNotifications({ accountId, limit: 3 })).notifications.map((n) => n.eventId)).toEqual(newestFirst.slice(0, 3));
    expect((await admin.listAccountNotifications({ accountId, limit: 500 })).notifications).toHaveLength(500);
    for (const limit of [501, -1]) {
      const error = await rejection(admin.listAccountNotifications({ accountId, limit }));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toBe("limit: must be from 1 to 500");
    }
  });

  it("refuses a malformed account id or type filter", async () => {
    const badAccount = await rejection(admin.listAccountNotifications({ accountId: "acc_nope" }));
    expect(badAccount.code).toBe(Code.InvalidArgument);
    expect(badAccount.rawMessage).toBe("account_id: must be a acc_ id");
    const badType = await rejection(admin.listAccountNotifications({ accountId: newId("acc"), type: "DROP TABLE" }));
    expect(badType.code).toBe(Code.InvalidArgument);
    expect(badType.rawMessage.startsWith("type: ")).toBe(true);
  });
});
