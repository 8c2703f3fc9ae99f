import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PoolShortfallDetailSchema } from "@cls/proto";
import type { EdgeVisClient } from "@cls/edgevis-client";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, createPool, customerClients, enrollServer, ms, notificationsOf, poolAsListed, putContainerModel, refusal } from "./support.js";

/**
 * FAQ: "Currently, servers can only use one licence pool at a time. If necessary, you can
 * change the licensing pool your server uses to a different licence pool."
 */
describe("Can my server support more than one licence pool?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
    await putContainerModel(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A server on its first pool holding 2 edgevis-camera and 1 evvr-camera licences. */
  async function serverWithLicences() {
    const { accountId, poolId: oldPool } = await seedAccount(t, { count: 5 });
    await t.vendor.pools.changeEntitlement({ poolId: oldPool, counts: { "evvr-camera": 5 } });
    const server = await enrollServer(t, accountId, oldPool);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    await server.registerEncoder("box-1", "evvr-container", "9.0");
    const before = [await server.addCamera("enc-1", "cam-1"), await server.addCamera("enc-1", "cam-2"), await server.addCamera("box-1", "cam-1")];
    return { accountId, oldPool, server, before };
  }

  async function activeAllocations(server: EdgeVisClient) {
    const { allocations } = await server.allocation.listAllocations({});
    return allocations.map((a) => ({ allocationId: a.allocationId, poolId: a.poolId, camera: `${a.encoderId}/${a.cameraId}` })).sort((a, b) => a.camera.localeCompare(b.camera));
  }

  it("a server draws from exactly one pool, even when its account has several", async () => {
    const { accountId, oldPool, server } = await serverWithLicences();
    await createPool(t, accountId, "other purchase", { "edgevis-camera": 50 });
    // SPEC L3: every licence the server takes comes from its own pool, never from the other.
    const { allocations } = await server.allocation.listAllocations({});
    expect(new Set(allocations.map((a) => a.poolId))).toEqual(new Set([oldPool]));
    const next = await server.addCamera("enc-1", "cam-3");
    expect(next.lease.lease.poolId).toBe(oldPool);
  });

  it("switching moves all of the server's licences at once, with new leases from the new pool", async () => {
    const { accountId, oldPool, server, before } = await serverWithLicences();
    const newPool = await createPool(t, accountId, "renewal", { "edgevis-camera": 2, "evvr-camera": 1 });

    // SPEC L3: the server itself asks to switch; all three licences move together.
    const switched = await server.allocation.switchPool({ poolId: newPool.poolId });
    expect(switched.poolId).toBe(newPool.poolId);
    const leases = switched.leases.map((signed) => server.verify(signed).lease);
    expect(leases.map((l) => `${l.encoderId}/${l.cameraId}`).sort()).toEqual(["box-1/cam-1", "enc-1/cam-1", "enc-1/cam-2"]);
    const highestOldSerial = before.reduce((max, b) => (b.lease.lease.serial > max ? b.lease.lease.serial : max), 0n);
    for (const lease of leases) {
      expect(lease.poolId).toBe(newPool.poolId);
      expect(lease.serial).toBeGreaterThan(highestOldSerial);
      expect(ms(lease.expiresAt)).toBeLessThanOrEqual(ms(newPool.expiresAt));
    }

    // The old pool freed them, the new pool counts them, the allocations are the same ones.
    expect((await poolAsListed(server, oldPool)).byType).toEqual({ "edgevis-camera": { total: 5, used: 0, free: 5 }, "evvr-camera": { total: 5, used: 0, free: 5 } });
    expect((await poolAsListed(server, newPool.poolId)).byType).toEqual({ "edgevis-camera": { total: 2, used: 2, free: 0 }, "evvr-camera": { total: 1, used: 1, free: 0 } });
    const after = await activeAllocations(server);
    expect(after.map((a) => a.poolId)).toEqual([newPool.poolId, newPool.poolId, newPool.poolId]);
    expect(after.map((a) => a.allocationId).sort()).toEqual(before.map((b) => b.allocation!.allocationId).sort());

    // From now on the server draws from the new pool: it is full, so the next camera is refused there.
    const full = await refusal(server.addCamera("enc-1", "cam-9"));
    expect(full.code).toBe(Code.ResourceExhausted);
    // And the daily check renews from the new pool.
    const [check] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(check!.leases.map((l) => l.lease.poolId)).toEqual([newPool.poolId, newPool.poolId]);

    // SPEC L15, L16: the switch is notified and audited with its actor.
    const events = await notificationsOf(t, accountId, "server.pool_switched");
    expect(events.map((e) => e.data)).toEqual([expect.objectContaining({ from_pool_id: oldPool, to_pool_id: newPool.poolId, licences_moved: 3 })]);
    const { entries } = await t.vendor.allocation.listAudit({ accountId });
    expect(entries).toContainEqual(expect.objectContaining({ action: "server.pool_switched", actor: `server:${server.identity!.serverId}` }));
  });

  it("a switch to a pool without room is refused with the shortfall per type, and nothing changes", async () => {
    const { accountId, oldPool, server } = await serverWithLicences();
    // Room for one edgevis-camera licence (two needed) and no evvr-camera at all (one needed).
    const small = await createPool(t, accountId, "too small", { "edgevis-camera": 1 });
    const before = await activeAllocations(server);

    const refused = await refusal(server.allocation.switchPool({ poolId: small.poolId }));
    // SPEC L3: refused, naming what is missing per licence type.
    expect(refused.code).toBe(Code.FailedPrecondition);
    const [detail] = refused.findDetails(PoolShortfallDetailSchema);
    expect(detail?.poolId).toBe(small.poolId);
    expect(detail?.shortfalls.map((s) => ({ licenceType: s.licenceType, needed: s.needed, free: s.free })).sort((a, b) => a.licenceType.localeCompare(b.licenceType))).toEqual([
      { licenceType: "edgevis-camera", needed: 2, free: 1 },
      { licenceType: "evvr-camera", needed: 1, free: 0 },
    ]);

    // Nothing changed: same allocations in the old pool, same counts, still bound to the old pool.
    expect(await activeAllocations(server)).toEqual(before);
    expect((await poolAsListed(server, oldPool)).byType).toEqual({ "edgevis-camera": { total: 5, used: 2, free: 3 }, "evvr-camera": { total: 5, used: 1, free: 4 } });
    expect((await poolAsListed(server, small.poolId)).byType).toEqual({ "edgevis-camera": { total: 1, used: 0, free: 1 } });
    const next = await server.addCamera("enc-1", "cam-3");
    expect(next.lease.lease.poolId).toBe(oldPool);
    expect(await notificationsOf(t, accountId, "server.pool_switched")).toEqual([]);
  });

  it("a server cannot switch to a pool of another account", async () => {
    const { server } = await serverWithLicences();
    const stranger = await seedAccount(t, { count: 100 });
    const refused = await refusal(server.allocation.switchPool({ poolId: stranger.poolId }));
    expect([Code.NotFound, Code.PermissionDenied]).toContain(refused.code);
    expect(refused.rawMessage).not.toContain(stranger.accountId);
  });

  it("the customer can switch one of their servers with an account API key", async () => {
    // SPEC L14: the same switch, made by the customer rather than the server.
    const { accountId, oldPool, server } = await serverWithLicences();
    const newPool = await createPool(t, accountId, "renewal", { "edgevis-camera": 10, "evvr-camera": 10 });
    const customer = await customerClients(t, accountId);
    const switched = await customer.allocation.switchPool({ serverId: server.identity!.serverId, poolId: newPool.poolId });
    expect(switched.poolId).toBe(newPool.poolId);
    expect(switched.leases).toHaveLength(3);
    expect((await poolAsListed(server, oldPool)).byType["edgevis-camera"]).toEqual({ total: 5, used: 0, free: 5 });
    expect((await poolAsListed(server, newPool.poolId)).byType).toEqual({ "edgevis-camera": { total: 10, used: 2, free: 8 }, "evvr-camera": { total: 10, used: 1, free: 9 } });
    // The server's next licence comes from the new pool.
    expect((await server.addCamera("enc-1", "cam-3")).lease.lease.poolId).toBe(newPool.poolId);
  });
});
