import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { PoolShortfallDetailSchema } from "@cls/proto";
import { CAMERA, CONTAINER_MODEL, createAllocationTestContext, EVVR_CAMERA, rejection, type AllocationTestContext, type TestServer } from "./test-context.js";

let t: AllocationTestContext;
beforeAll(async () => {
  t = await createAllocationTestContext();
});
afterAll(async () => {
  await t?.close();
});

/** A server in a pool of 5 + 5 holding `cameras` edgevis and `evvr` evvr-camera licences, plus a legacy encoder. */
async function busyServer(cameras: number, evvr: number): Promise<TestServer> {
  const server = await t.newServer(await t.newPool({ [CAMERA]: 5, [EVVR_CAMERA]: 5 }));
  await t.registered(server, "enc-1");
  await t.registered(server, "box-1", { model: CONTAINER_MODEL, firmware: "9.0" });
  await t.registered(server, "old-1", { firmware: "8.2" });
  for (let i = 0; i < cameras; i++) await server.api.acquireLicence({ encoderId: "enc-1", cameraId: `cam-${i}` });
  for (let i = 0; i < evvr; i++) await server.api.acquireLicence({ encoderId: "box-1", cameraId: `cam-${i}` });
  return server;
}

async function snapshot(server: TestServer) {
  const [binding, allocations, usage] = await Promise.all([
    t.db.selectFrom("servers").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow(),
    t.db.selectFrom("allocations").selectAll().where("server_id", "=", server.caller.serverId).orderBy("grant_seq").execute(),
    t.db.selectFrom("pool_usage").selectAll().where("pool_id", "in", [server.pool.poolId]).orderBy("licence_type").execute(),
  ]);
  return { binding, allocations, usage };
}

describe("SwitchPool (SPEC L3)", () => {
  it("moves every active licence at once: the old pool frees them, the new pool counts them, new leases name it", async () => {
    const server = await busyServer(3, 2);
    const target = await t.newPool({ [CAMERA]: 3, [EVVR_CAMERA]: 2 }, { accountId: server.pool.accountId, expiresInMs: 100 * DAY_MS });

    const { poolId, leases } = await server.api.switchPool({ poolId: target.poolId });

    expect(poolId).toBe(target.poolId);
    const opened = leases.map((lease) => t.openLease(lease));
    expect(opened).toHaveLength(5);
    expect(opened.every((lease) => lease.poolId === target.poolId && lease.serverId === server.caller.serverId)).toBe(true);
    expect(opened.every((lease) => timestampDate(lease.expiresAt!).getTime() === t.clock.now().getTime() + 30 * DAY_MS)).toBe(true);
    expect((await t.usage(server.pool.poolId, CAMERA)).used).toBe(0);
    expect((await t.usage(server.pool.poolId, EVVR_CAMERA)).used).toBe(0);
    expect((await t.usage(target.poolId, CAMERA)).used).toBe(3);
    expect((await t.usage(target.poolId, EVVR_CAMERA)).used).toBe(2);
    expect(await t.activeCount(target.poolId, CAMERA)).toBe(3);
    expect(await t.activeCount(target.poolId, EVVR_CAMERA)).toBe(2);
    // The legacy licence belongs to no pool and stays as it was.
    const legacy = await server.api.listAllocations({ encoderId: "old-1" });
    expect(legacy.allocations.map((a) => a.poolId)).toEqual([""]);
    const binding = await t.db.selectFrom("servers").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    expect(binding.pool_id).toBe(target.poolId);
    // New licences now come from the new pool, which is full for edgevis cameras.
    expect((await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-new" }))).code).toBe(Code.ResourceExhausted);
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", server.caller.serverId).where("action", "=", "server.pool_switched").execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.detail).toMatchObject({ from_pool_id: server.pool.poolId, to_pool_id: target.poolId, licences_moved: 5 });
    expect(await t.outboxEvents(server.pool.accountId, "server.pool_switched")).toHaveLength(1);
  });

  it("refuses with the shortfall per licence type when the new pool lacks room, and changes nothing", async () => {
    const server = await busyServer(3, 2);
    const target = await t.newPool({ [CAMERA]: 5, [EVVR_CAMERA]: 1 }, { accountId: server.pool.accountId });
    const before = await snapshot(server);

    const error = await rejection(server.api.switchPool({ poolId: target.poolId }));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.findDetails(PoolShortfallDetailSchema)).toMatchObject([
      { poolId: target.poolId, shortfalls: [{ licenceType: EVVR_CAMERA, needed: 2, free: 1 }] },
    ]);
    expect(error.findDetails(PoolShortfallDetailSchema)[0]!.shortfalls).toHaveLength(1);
    expect(await snapshot(server)).toEqual(before);
    expect((await t.usage(target.poolId, CAMERA)).used).toBe(0);
    expect((await t.usage(target.poolId, EVVR_CAMERA)).used).toBe(0);
    expect(await t.outboxEvents(server.pool.accountId, "server.pool_switched")).toEqual([]);
  });

  it("counts what other servers already use in the new pool, and a type the new pool lacks has 0 free", async () => {
    const server = await busyServer(2, 1);
    const target = await t.newPool({ [CAMERA]: 3 }, { accountId: server.pool.accountId });
    const neighbour = await t.newServer(target);
    await t.registered(neighbour, "enc-n");
    await neighbour.api.acquireLicence({ encoderId: "enc-n", cameraId: "cam-n1" });
    await neighbour.api.acquireLicence({ encoderId: "enc-n", cameraId: "cam-n2" });
    const before = await snapshot(server);

    const error = await rejection(server.api.switchPool({ poolId: target.poolId }));

    const [detail] = error.findDetails(PoolShortfallDetailSchema);
    expect(detail!.shortfalls.map((s) => [s.licenceType, s.needed, s.free]).sort()).toEqual([
      [CAMERA, 2, 1],
      [EVVR_CAMERA, 1, 0],
    ]);
    expect(await snapshot(server)).toEqual(before);
    expect((await t.usage(target.poolId, CAMERA)).used).toBe(2);
  });

  it("refuses another account's pool or an unknown pool with not_found, changing nothing (SPEC L11)", async () => {
    const server = await busyServer(1, 0);
    const foreign = await t.newPool({ [CAMERA]: 10, [EVVR_CAMERA]: 10 });
    const before = await snapshot(server);

    expect((await rejection(server.api.switchPool({ poolId: foreign.poolId }))).code).toBe(Code.NotFound);
    expect((await rejection(server.api.switchPool({ poolId: newId("pool") }))).code).toBe(Code.NotFound);
    expect((await rejection(server.api.switchPool({ poolId: server.pool.poolId, serverId: newId("srv") }))).code).toBe(Code.NotFound);
    expect(await snapshot(server)).toEqual(before);
    expect((await t.usage(foreign.poolId)).used).toBe(0);
  });

  it("refuses an expired target pool with failed_precondition (SPEC L5)", async () => {
    const server = await busyServer(1, 0);
    const target = await t.newPool({ [CAMERA]: 5 }, { accountId: server.pool.accountId, expiresInMs: DAY_MS });
    t.clock.advance(2 * DAY_MS);
    const before = await snapshot(server);

    expect((await rejection(server.api.switchPool({ poolId: target.poolId }))).code).toBe(Code.FailedPrecondition);
    expect(await snapshot(server)).toEqual(before);
  });

  it("refuses a malformed pool id with invalid_argument naming the field", async () => {
    const server = await busyServer(0, 0);
    const error = await rejection(server.api.switchPool({ poolId: "pool-1" }));
    expect([error.code, error.rawMessage]).toEqual([Code.InvalidArgument, "pool_id: must be a pool_ id"]);
  });

  it("two servers switching into the last free licences concurrently never overfill the new pool (SPEC L3, L7a)", async () => {
    const accountPool = await t.newPool({ [CAMERA]: 10 });
    const a = await t.newServer(accountPool);
    const b = await t.newServer(accountPool);
    for (const s of [a, b]) {
      await t.registered(s, "enc-1");
      await s.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
      await s.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    }
    const target = await t.newPool({ [CAMERA]: 3 }, { accountId: accountPool.accountId });

    const results = await Promise.allSettled([a.api.switchPool({ poolId: target.poolId }), b.api.switchPool({ poolId: target.poolId })]);

    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((await t.usage(target.poolId)).used).toBe(2);
    expect(await t.activeCount(target.poolId)).toBe(2);
    expect((await t.usage(accountPool.poolId)).used).toBe(2);
    expect(await t.activeCount(accountPool.poolId)).toBe(2);
  });
});

describe("SwitchPool racing AcquireLicence (SPEC L3: one pool per server at a time)", () => {
  it("leaves every active licence of the server in the server's pool, with used matching the rows", async () => {
    const server = await busyServer(2, 0);
    const from = server.pool.poolId;
    const target = await t.newPool({ [CAMERA]: 10, [EVVR_CAMERA]: 10 }, { accountId: server.pool.accountId });

    // Hold the old pool's usage row so both calls queue behind it after reading their state.
    const hold = await t.holdPoolUsage(from);
    const acquire = server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-racing" });
    await t.waiters(1);
    const switched = server.api.switchPool({ poolId: target.poolId });
    await t.waiters(2);
    await hold.release();
    await Promise.allSettled([acquire, switched]);

    const binding = await t.db.selectFrom("servers").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    const active = await t.db
      .selectFrom("allocations")
      .selectAll()
      .where("server_id", "=", server.caller.serverId)
      .where("state", "=", "active")
      .where("kind", "=", "pool")
      .execute();
    expect(active.map((a) => [a.camera_id, a.pool_id])).toEqual(active.map((a) => [a.camera_id, binding.pool_id]));
    for (const poolId of [from, target.poolId]) {
      expect((await t.usage(poolId)).used, poolId).toBe(await t.activeCount(poolId));
    }
  });
});
