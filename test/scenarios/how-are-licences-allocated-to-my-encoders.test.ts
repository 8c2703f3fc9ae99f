import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PoolExhaustedDetailSchema } from "@cls/proto";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, enrollServer, newServerClient, notificationsOf, poolAsListed, refusal } from "./support.js";

/**
 * FAQ: "When you add a camera to your v9 encoder, it will automatically acquire an
 * appropriate licence from your licence pool if available."
 */
describe("How are licences allocated to my encoders?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("adding a camera to a v9 encoder acquires a licence automatically, as a signed lease", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 3 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.1");

    // SPEC L7: one camera added, one licence of the model's type from the server's pool.
    const granted = await server.addCamera("enc-1", "cam-1");
    expect(granted.lease.lease).toMatchObject({ accountId, poolId, serverId: server.identity!.serverId, encoderId: "enc-1", cameraId: "cam-1", licenceType: "edgevis-camera" });
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("licensed");
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 3, used: 1, free: 2 });

    // The customer sees which encoder and camera hold the licence (SPEC L14).
    const { allocations } = await server.allocation.listAllocations({ encoderId: "enc-1" });
    expect(allocations.map((a) => [a.encoderId, a.cameraId, a.poolId])).toEqual([["enc-1", "cam-1", poolId]]);
  });

  it("adding the same camera again, or retrying, never takes a second licence", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 3 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.1");
    const first = await server.addCamera("enc-1", "cam-1");
    // SPEC L7: idempotent per camera — the same allocation, a fresh lease.
    const retries = await Promise.all([server.addCamera("enc-1", "cam-1"), server.addCamera("enc-1", "cam-1")]);
    for (const again of retries) {
      expect(again.allocation!.allocationId).toBe(first.allocation!.allocationId);
      expect(again.lease.lease.serial).toBeGreaterThan(first.lease.lease.serial);
    }
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 3, used: 1, free: 2 });
  });

  it("with no licence free the camera is refused with the pool's total and used, and the customer is told", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.1");
    await server.addCamera("enc-1", "cam-1");
    await server.addCamera("enc-1", "cam-2");

    // SPEC L7: resource_exhausted, with total and used in the details.
    const refused = await refusal(server.addCamera("enc-1", "cam-3"));
    expect(refused.code).toBe(Code.ResourceExhausted);
    expect(refused.findDetails(PoolExhaustedDetailSchema)).toEqual([expect.objectContaining({ poolId, licenceType: "edgevis-camera", total: 2, used: 2 })]);
    expect(server.leases.standing("enc-1", "cam-3", t.clock.now())).toBe("unlicensed");
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 2, free: 0 });

    // SPEC L15: the refusal and the pool reaching 100% are notified.
    const refusals = await notificationsOf(t, accountId, "acquisition.refused");
    expect(refusals.map((n) => n.data)).toEqual([expect.objectContaining({ pool_id: poolId, camera_id: "cam-3", total: 2, used: 2 })]);
    expect(await notificationsOf(t, accountId, "pool.usage_crossed")).not.toHaveLength(0);
  });

  it("removing a camera frees its licence at once for the next camera", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.1");
    await server.addCamera("enc-1", "cam-1");
    expect((await refusal(server.addCamera("enc-1", "cam-2"))).code).toBe(Code.ResourceExhausted);

    // SPEC L7: removing a camera releases its licence at once.
    expect(await server.removeCamera("enc-1", "cam-1")).toBe(true);
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("unlicensed");
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 1, used: 0, free: 1 });
    const next = await server.addCamera("enc-1", "cam-2");
    expect(next.lease.lease.cameraId).toBe("cam-2");
    // Removing it twice releases nothing more.
    expect(await server.removeCamera("enc-1", "cam-1")).toBe(false);
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 1, used: 1, free: 0 });
  });

  it("a server that starts up and adds thirty cameras at once gets a licence for each", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 30 });
    const enrolled = await enrollServer(t, accountId, poolId);
    const setUp = newServerClient(t, { identity: enrolled.identity!, cacheToken: true });
    await setUp.registerEncoder("enc-1", "HD-IP200", "9.2");
    // The server restarts (the library as shipped, no token yet) and brings its cameras up together.
    const restarted = newServerClient(t, { identity: enrolled.identity!, cacheToken: true });
    const cameras = Array.from({ length: 30 }, (_, i) => `cam-${i}`);
    const settled = await Promise.allSettled(cameras.map((camera) => restarted.addCamera("enc-1", camera)));
    const failures = settled.flatMap((s) => (s.status === "rejected" ? [String(s.reason)] : []));
    expect(failures).toEqual([]);
    expect((await poolAsListed(restarted, poolId)).byType["edgevis-camera"]).toEqual({ total: 30, used: 30, free: 0 });
  });

  it("a camera on an encoder the server never registered is refused, taking nothing", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    const refused = await refusal(server.addCamera("enc-unknown", "cam-1"));
    expect(refused.code).toBe(Code.NotFound);
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 1, used: 0, free: 1 });
  });
});
