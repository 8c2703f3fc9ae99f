import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { forSchema, newId, sql, type Kysely } from "@cls/db";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { ALLOCATION_SCHEMA, type AllocationDatabase } from "./database.js";
import { insertAndCountAllocations, lockServersThenUsage, type CameraGrant } from "./grant.repository.js";
import { migrateAllocation } from "./module.js";

const LICENCE = "camera";
const now = new Date("2030-01-01T00:00:00Z");
const expiresAt = new Date("2031-01-01T00:00:00Z");

let database: TestDatabase;
let db: Kysely<AllocationDatabase>;
let poolId: string;
let serverIds: string[];

beforeAll(async () => {
  database = await createTestDatabase();
  await migrateAllocation(database.handle.root);
  db = forSchema<AllocationDatabase>(database.handle.root, ALLOCATION_SCHEMA);
});

afterAll(async () => {
  await database?.drop();
});

beforeEach(async () => {
  poolId = newId("pool");
  serverIds = [newId("srv"), newId("srv")].sort();
  await db.insertInto("pools").values({ pool_id: poolId, account_id: "acc", expires_at: expiresAt, version: 1 }).execute();
  await db.insertInto("pool_usage").values({ pool_id: poolId, licence_type: LICENCE, capacity: 3, expires_at: expiresAt }).execute();
  await db
    .insertInto("servers")
    .values(serverIds.map((server_id) => ({ server_id, account_id: "acc", pool_id: poolId, state: "active" as const, bound_at: now })))
    .execute();
});

/** Runs `work` in a transaction that stays open until `finish()`; `done` settles when it has ended. */
function openTransaction<T>(work: (trx: Kysely<AllocationDatabase>) => Promise<T>) {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let result!: (value: T) => void;
  const produced = new Promise<T>((resolve) => (result = resolve));
  const done = db.transaction().execute(async (trx) => {
    result(await work(trx));
    await finished;
  });
  return { produced, finish, done };
}

async function waitingOnLocks(count: number): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(db);
    if (rows[0]!.n >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`never saw ${count} statements waiting on a lock`);
}

/** Whether another transaction could lock the row now (NOWAIT fails on a held lock). */
async function lockable(query: (trx: Kysely<AllocationDatabase>) => Promise<unknown>): Promise<boolean> {
  try {
    await db.transaction().execute(query);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "55P03") return false;
    throw error;
  }
}

const usageRow = (trx: Kysely<AllocationDatabase>) =>
  trx.selectFrom("pool_usage").select("used").where("pool_id", "=", poolId).where("licence_type", "=", LICENCE).forUpdate().noWait().execute();
const serverRow = (trx: Kysely<AllocationDatabase>, serverId: string) => trx.selectFrom("servers").select("state").where("server_id", "=", serverId).forUpdate().noWait().execute();

describe("lockServersThenUsage", () => {
  it("reads the bindings and the usage row", async () => {
    const locked = await db.transaction().execute((trx) => lockServersThenUsage(trx, serverIds, poolId, LICENCE));
    expect(locked.usage).toEqual({ capacity: 3, used: 0, fence: 0, expires_at: expiresAt });
    expect([...locked.bindings.values()]).toEqual(serverIds.map((server_id) => ({ server_id, pool_id: poolId, state: "active" })));
  });

  it("reads the bindings when the pool has no row for the type", async () => {
    const locked = await db.transaction().execute((trx) => lockServersThenUsage(trx, serverIds, poolId, "other-type"));
    expect(locked.usage).toBeUndefined();
    expect(locked.bindings.size).toBe(2);
  });

  it("does not touch the usage row while it waits for a server", async () => {
    const switching = openTransaction((trx) => serverRow(trx, serverIds[1]!));
    await switching.produced;
    const grant = openTransaction((trx) => lockServersThenUsage(trx, serverIds, poolId, LICENCE));
    await waitingOnLocks(1);

    expect(await lockable(usageRow)).toBe(true);
    switching.finish();
    await switching.done;
    await grant.produced;
    expect(await lockable(usageRow)).toBe(false);
    grant.finish();
    await grant.done;
  });

  it("holds every server while it waits for the usage row", async () => {
    const holder = openTransaction(usageRow);
    await holder.produced;
    const grant = openTransaction((trx) => lockServersThenUsage(trx, serverIds, poolId, LICENCE));
    await waitingOnLocks(1);

    for (const serverId of serverIds) expect(await lockable((trx) => serverRow(trx, serverId))).toBe(false);
    holder.finish();
    await holder.done;
    await grant.produced;
    grant.finish();
    await grant.done;
  });

  it("reads the usage committed by the grant it waited for", async () => {
    const earlier = openTransaction((trx) => trx.updateTable("pool_usage").set({ used: 2, fence: 5 }).where("pool_id", "=", poolId).execute());
    await earlier.produced;
    const grant = openTransaction((trx) => lockServersThenUsage(trx, serverIds, poolId, LICENCE));
    await waitingOnLocks(1);
    earlier.finish();
    await earlier.done;

    const locked = await grant.produced;
    grant.finish();
    await grant.done;
    expect(locked.usage).toMatchObject({ used: 2, fence: 5 });
  });

  it("sees a pool switch it waited for", async () => {
    const otherPool = newId("pool");
    await db.insertInto("pools").values({ pool_id: otherPool, account_id: "acc", expires_at: expiresAt, version: 1 }).execute();
    const switching = openTransaction((trx) => trx.updateTable("servers").set({ pool_id: otherPool }).where("server_id", "=", serverIds[0]!).execute());
    await switching.produced;
    const grant = openTransaction((trx) => lockServersThenUsage(trx, serverIds, poolId, LICENCE));
    await waitingOnLocks(1);
    switching.finish();
    await switching.done;

    const locked = await grant.produced;
    grant.finish();
    await grant.done;
    expect(locked.bindings.get(serverIds[0]!)?.pool_id).toBe(otherPool);
  });
});

describe("insertAndCountAllocations", () => {
  const camera = (cameraId: string): CameraGrant => ({ accountId: "acc", serverId: serverIds[0]!, encoderId: "enc", cameraId, leaseExpiresAt: expiresAt });
  const grant = (cameras: CameraGrant[], fence: number | null = null) =>
    db.transaction().execute((trx) => insertAndCountAllocations(trx, { poolId, licenceType: LICENCE, now, fence, cameras }));
  const state = async () => ({
    usage: await db.selectFrom("pool_usage").select(["used", "fence"]).where("pool_id", "=", poolId).executeTakeFirstOrThrow(),
    active: (await db.selectFrom("allocations").select("camera_id").where("pool_id", "=", poolId).where("state", "=", "active").orderBy("camera_id").execute()).map((row) => row.camera_id),
  });

  it("inserts the cameras and adds them to used, with the fence", async () => {
    const { inserted, usedAfter } = await grant([camera("a"), camera("b")], 7);
    expect(inserted.map((row) => [row.camera_id, row.state, row.kind, row.pool_id])).toEqual([
      ["a", "active", "pool", poolId],
      ["b", "active", "pool", poolId],
    ]);
    expect(inserted[0]!.lease_expires_at).toEqual(expiresAt);
    expect(typeof inserted[0]!.lease_serial).toBe("number");
    expect(usedAfter).toBe(2);
    expect(await state()).toEqual({ usage: { used: 2, fence: 7 }, active: ["a", "b"] });
  });

  it("skips a camera that already holds one and counts only what it inserted", async () => {
    await grant([camera("a")]);
    const { inserted, usedAfter } = await grant([camera("a"), camera("b")]);
    expect(inserted.map((row) => row.camera_id)).toEqual(["b"]);
    expect(usedAfter).toBe(2);
    expect(await state()).toEqual({ usage: { used: 2, fence: 0 }, active: ["a", "b"] });
  });

  it("writes nothing to the usage row when every camera already holds one", async () => {
    await grant([camera("a")], 3);
    const { inserted, usedAfter } = await grant([camera("a")], 9);
    expect(inserted).toEqual([]);
    expect(usedAfter).toBeUndefined();
    expect(await state()).toEqual({ usage: { used: 1, fence: 3 }, active: ["a"] });
  });

  it("keeps no allocation when the addition does not fit", async () => {
    await grant([camera("a"), camera("b")]);
    await expect(grant([camera("c"), camera("d")])).rejects.toThrow("pool usage changed under its row lock");
    expect(await state()).toEqual({ usage: { used: 2, fence: 0 }, active: ["a", "b"] });
  });
});
