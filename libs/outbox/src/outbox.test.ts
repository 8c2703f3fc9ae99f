import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "@cls/clock";
import { forSchema, type Kysely } from "@cls/db";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { recordEvents, type OutboxEvent } from "./record.js";
import { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions, type StoredEvent } from "./relay.js";
import { addOutboxTraceContext, createOutboxTable, type OutboxTable } from "./table.js";

const logger = pino({ level: "silent" });
const clock = new ManualClock(new Date("2026-06-01T08:00:00Z"));
let database: TestDatabase;
let db: Kysely<{ outbox: OutboxTable }>;
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

beforeEach(async () => {
  for (const relay of relays.splice(0)) await relay.stop();
  // A fresh schema per test, holding only an outbox, as a producing service's would.
  const schema = `svc_${randomBytes(4).toString("hex")}`;
  await database.handle.root.schema.createSchema(schema).execute();
  db = forSchema(database.handle.root, schema);
  await createOutboxTable(db);
  await addOutboxTraceContext(db);
});

function relay(deliver: OutboxRelayOptions["deliver"], options: Partial<OutboxRelayOptions> = {}): OutboxRelay {
  // A long interval: these tests drive delivery with flush().
  const started = startOutboxRelay({ db, deliver, clock, logger, source: "test", intervalMs: 3_600_000, ...options });
  relays.push(started);
  return started;
}

function events(count: number, accountId = "acc_1"): OutboxEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    accountId,
    type: "licence.acquired",
    data: { index: i, camera: `cam-${i}`, nested: { ok: true, list: [1, "two"] } },
    occurredAt: new Date(clock.now().getTime() + i),
  }));
}

async function record(list: OutboxEvent[]): Promise<string[]> {
  return db.transaction().execute((trx) => recordEvents(trx, list));
}

async function rows() {
  return db.selectFrom("outbox").selectAll().orderBy("occurred_at").execute();
}

describe("recordEvents", () => {
  it("writes nothing when the transaction rolls back", async () => {
    const failed = db.transaction().execute(async (trx) => {
      const ids = await recordEvents(trx, events(3));
      expect(ids).toHaveLength(3);
      throw new Error("the change failed");
    });
    await expect(failed).rejects.toThrow("the change failed");
    expect(await rows()).toEqual([]);
  });

  it("stores committed events undelivered, with stable evt_ ids", async () => {
    const ids = await record(events(2));
    expect(ids).toHaveLength(2);
    for (const id of ids) expect(id).toMatch(/^evt_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(2);
    const stored = await rows();
    expect(stored.map((row) => row.event_id)).toEqual(ids);
    expect(stored.every((row) => row.delivered_at === null && row.attempts === 0)).toBe(true);
    expect(stored[1]!.data).toEqual({ index: 1, camera: "cam-1", nested: { ok: true, list: [1, "two"] } });
  });

  it("writes nothing and returns no ids for an empty list", async () => {
    expect(await record([])).toEqual([]);
    expect(await rows()).toEqual([]);
  });
});

describe("outbox relay", () => {
  it("delivers committed events exactly as recorded, with their ids, once", async () => {
    const recorded = events(3);
    const ids = await record(recorded);
    const delivered: StoredEvent[][] = [];
    const outbox = relay(async (batch) => {
      delivered.push(batch);
    });
    expect(await outbox.flush()).toBe(3);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toEqual(
      recorded.map((event, i) => ({ eventId: ids[i], accountId: event.accountId, type: event.type, data: event.data, occurredAt: event.occurredAt })),
    );
    const stored = await rows();
    expect(stored.every((row) => row.delivered_at?.getTime() === clock.now().getTime())).toBe(true);
    // Nothing is delivered twice once it is marked.
    expect(await outbox.flush()).toBe(0);
    expect(delivered).toHaveLength(1);
  });

  it("delivers in the order the events occurred", async () => {
    const list = events(4).reverse();
    const ids = await record(list);
    const seen: string[] = [];
    const outbox = relay(async (batch) => {
      seen.push(...batch.map((event) => event.eventId));
    });
    await outbox.flush();
    expect(seen).toEqual([...ids].reverse());
  });

  it("delivers in batches until nothing is left", async () => {
    const ids = await record(events(25));
    const batches: number[] = [];
    const seen: string[] = [];
    const outbox = relay(
      async (batch) => {
        batches.push(batch.length);
        seen.push(...batch.map((event) => event.eventId));
      },
      { batchSize: 10 },
    );
    expect(await outbox.flush()).toBe(25);
    expect(batches).toEqual([10, 10, 5]);
    expect(seen).toEqual(ids);
  });

  it("leaves events undelivered with attempts counted when delivery fails, and delivers them later with the same ids", async () => {
    const ids = await record(events(2));
    let failing = true;
    const delivered: string[] = [];
    const outbox = relay(async (batch) => {
      if (failing) throw new Error("notification service unavailable");
      delivered.push(...batch.map((event) => event.eventId));
    });

    await expect(outbox.flush()).rejects.toThrow("notification service unavailable");
    let stored = await rows();
    expect(stored.map((row) => row.delivered_at)).toEqual([null, null]);
    expect(stored.map((row) => row.attempts)).toEqual([1, 1]);

    await expect(outbox.flush()).rejects.toThrow("notification service unavailable");
    expect((await rows()).map((row) => row.attempts)).toEqual([2, 2]);

    failing = false;
    expect(await outbox.flush()).toBe(2);
    expect(delivered).toEqual(ids);
    stored = await rows();
    expect(stored.every((row) => row.delivered_at !== null)).toBe(true);
  });

  it("a flush called during a running pass also delivers what was recorded meanwhile", async () => {
    const [first] = await record(events(1));
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let started!: () => void;
    const firstDeliveryStarted = new Promise<void>((resolve) => (started = resolve));
    const delivered: string[] = [];
    const outbox = relay(async (batch) => {
      if (delivered.length === 0) {
        started();
        await gate;
      }
      delivered.push(...batch.map((event) => event.eventId));
    });
    const firstFlush = outbox.flush();
    await firstDeliveryStarted;
    const [second] = await record(events(1, "acc_2"));
    const secondFlush = outbox.flush();
    openGate();
    await firstFlush;
    await secondFlush;
    expect(delivered).toEqual([first, second]);
  });

  it("two relays flushing concurrently deliver every event and lose none", async () => {
    const ids = await record(events(120));
    const seenA: string[] = [];
    const seenB: string[] = [];
    const slowly = (seen: string[]) => async (batch: StoredEvent[]) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      seen.push(...batch.map((event) => event.eventId));
    };
    const a = relay(slowly(seenA), { batchSize: 7 });
    const b = relay(slowly(seenB), { batchSize: 7 });
    const [countA, countB] = await Promise.all([a.flush(), b.flush()]);
    const all = [...seenA, ...seenB];
    expect(new Set(all)).toEqual(new Set(ids));
    expect(countA + countB).toBe(all.length);
    expect((await rows()).every((row) => row.delivered_at !== null)).toBe(true);
    // Nothing is left for anyone.
    expect(await a.flush()).toBe(0);
    expect(await b.flush()).toBe(0);
  });

  it("another relay redelivers, with the same ids, a batch whose relay stalled mid-delivery", async () => {
    const local = new ManualClock(clock.now());
    const ids = await record(events(3));
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let started!: () => void;
    const stalledStarted = new Promise<void>((resolve) => (started = resolve));
    const stalled = relay(
      async () => {
        started();
        await gate;
      },
      { clock: local },
    );
    const stalledFlush = stalled.flush();
    await stalledStarted;

    const seen: string[] = [];
    const rescuer = relay(
      async (batch) => {
        seen.push(...batch.map((event) => event.eventId));
      },
      { clock: local },
    );
    // While the first relay still owns the batch, nobody else delivers it.
    expect(await rescuer.flush()).toBe(0);
    // Once its claim has run out, the batch is delivered again, at least once, under the same ids.
    local.advance(10 * 60_000);
    expect(await rescuer.flush()).toBe(3);
    expect(seen).toEqual(ids);
    expect((await rows()).every((row) => row.delivered_at !== null)).toBe(true);

    openGate();
    await stalledFlush;
  });

  it("stop() ends the relay after its running pass", async () => {
    await record(events(1));
    const delivered: string[] = [];
    const outbox = relay(async (batch) => {
      delivered.push(...batch.map((event) => event.eventId));
    });
    const pass = outbox.flush();
    await outbox.stop();
    await pass;
    expect(delivered).toHaveLength(1);
  });
});
