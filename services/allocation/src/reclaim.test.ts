import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@cls/clock";
import { AllocationState } from "@cls/proto";
import { reclaimLapsed } from "./reclaim.js";
import { CAMERA, createAllocationTestContext, type AllocationTestContext } from "./test-context.js";

let t: AllocationTestContext;
beforeAll(async () => {
  t = await createAllocationTestContext();
});
afterAll(async () => {
  await t?.close();
});

describe("reclaimLapsed (SPEC L9a)", () => {
  it("frees allocations whose lease expired without a check, notifies, and leaves checked, legacy and fresh licences alone", async () => {
    const pool = await t.newPool({ [CAMERA]: 5 });
    const dead = await t.newServer(pool);
    const alive = await t.newServer(pool);
    await t.registered(dead, "enc-1");
    await t.registered(dead, "old-1", { firmware: "8.3" });
    await t.registered(alive, "enc-1");
    const lapsing = [
      await dead.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" }),
      await dead.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" }),
    ];
    await alive.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    t.clock.advance(20 * DAY_MS);
    await alive.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });
    await alive.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    // Nothing has lapsed yet: a lease runs 30 days.
    expect(await reclaimLapsed(t.context)).toBe(0);

    t.clock.advance(11 * DAY_MS);
    const reclaimed = await reclaimLapsed(t.context);

    expect(reclaimed).toBe(2);
    expect(await t.usage(pool.poolId)).toMatchObject({ used: 2 });
    expect(await t.activeCount(pool.poolId)).toBe(2);
    const { allocations } = await t.admin.listAccountAllocations({ accountId: pool.accountId });
    const byId = new Map(allocations.map((a) => [a.allocationId, a]));
    for (const { allocation } of lapsing) {
      expect(byId.get(allocation!.allocationId)).toMatchObject({ state: AllocationState.RECLAIMED, endReason: "lease_expired" });
    }
    expect(allocations.filter((a) => a.serverId === alive.caller.serverId).every((a) => a.state === AllocationState.ACTIVE)).toBe(true);
    expect(allocations.find((a) => a.encoderId === "old-1")?.state).toBe(AllocationState.ACTIVE);
    const events = await t.outboxEvents(pool.accountId, "licence.reclaimed");
    expect(events.map((e) => e.data.allocation_id).sort()).toEqual(lapsing.map((l) => l.allocation!.allocationId).sort());
    expect(events.every((e) => e.data.pool_id === pool.poolId && e.data.server_id === dead.caller.serverId)).toBe(true);

    // A second pass finds nothing more, and the freed capacity is granted again.
    expect(await reclaimLapsed(t.context)).toBe(0);
    await alive.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-3" });
    expect((await t.usage(pool.poolId)).used).toBe(3);
  });

  it("a server that comes back after its licences were reclaimed acquires afresh: the camera gets a new allocation", async () => {
    const pool = await t.newPool({ [CAMERA]: 1 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    const before = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    t.clock.advance(31 * DAY_MS);
    await reclaimLapsed(t.context);
    const row = await t.db.selectFrom("allocations").selectAll().where("allocation_id", "=", before.allocation!.allocationId).executeTakeFirstOrThrow();
    expect([row.state, (await t.usage(pool.poolId)).used]).toEqual(["reclaimed", 0]);

    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });
    expect(check.leases).toEqual([]);
    const after = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    expect(after.allocation?.allocationId).not.toBe(before.allocation?.allocationId);
    expect((await t.usage(pool.poolId)).used).toBe(1);
  });

  it("delivers the reclaim events to the notification service with stable ids (SPEC L15)", async () => {
    const pool = await t.newPool({ [CAMERA]: 1 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    t.clock.advance(31 * DAY_MS);
    await reclaimLapsed(t.context);

    await t.context.outbox.flush();

    const [stored] = await t.outboxEvents(pool.accountId, "licence.reclaimed");
    const delivered = t.ingested.filter((n) => n.accountId === pool.accountId && n.type === "licence.reclaimed");
    expect(delivered.map((n) => n.eventId)).toContain(stored!.event_id);
    expect(delivered.every((n) => n.source === "allocation")).toBe(true);
  });
});
