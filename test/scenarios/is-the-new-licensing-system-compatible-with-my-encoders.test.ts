import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LicenceKind } from "@cls/proto";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, DAY, enrollServer, ms, poolAsListed, putContainerModel, refusal } from "./support.js";

/**
 * FAQ: "Devices with v7.X firmware are not supported in v9. Devices with v8.X firmware are
 * supported in v9, and will be automatically granted a perpetual legacy EdgeVis Licence.
 * Devices with v9.X firmware and EVVR Containers are supported in v9, and will automatically
 * acquire the appropriate licence if you have the necessary licences available in your pool."
 */
describe("Is the new licensing system compatible with my encoders?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
    // SPEC L1a, L6: EVVR Containers take part in v9 licensing from 9.0.
    await putContainerModel(t, "evvr-container");
  });
  afterAll(async () => {
    await t?.close();
  });

  async function server(counts: { edgevis?: number; evvr?: number } = {}) {
    const { accountId, poolId } = await seedAccount(t, { count: counts.edgevis ?? 2 });
    await t.vendor.pools.changeEntitlement({ poolId, counts: { "evvr-camera": counts.evvr ?? 2 } });
    return { accountId, poolId, server: await enrollServer(t, accountId, poolId) };
  }

  it("v7.x firmware is refused, naming the minimum supported version", async () => {
    const { server: s } = await server();
    for (const version of ["7.9.3", "7.0", "6.1"]) {
      // SPEC L6: failed_precondition, and the message names the minimum supported version.
      const refused = await refusal(s.registerEncoder(`old-${version}`, "HD-IP200", version));
      expect(refused.code).toBe(Code.FailedPrecondition);
      expect(refused.rawMessage).toContain("minimum supported version is 8.0");
    }
    // Nothing was recorded for it.
    const { allocations } = await s.allocation.listAllocations({ includeEnded: true });
    expect(allocations).toEqual([]);
  });

  it("v8.x firmware gets a perpetual legacy EdgeVis licence that consumes nothing but is listed", async () => {
    const { poolId, server: s } = await server({ edgevis: 1 });
    // SPEC L6: granted automatically at registration.
    const { encoder, legacyLease } = await s.registerEncoder("old-1", "HD-IP200", "8.4.2");
    expect(encoder!.licenceKind).toBe(LicenceKind.LEGACY);
    expect(legacyLease!.lease).toMatchObject({ encoderId: "old-1", perpetual: true });
    expect(legacyLease!.lease.poolId).toBe("");
    expect(legacyLease!.lease.expiresAt).toBeUndefined();

    // It consumes no pool capacity...
    await s.addCamera("old-1", "cam-1");
    await s.addCamera("old-1", "cam-2");
    expect((await poolAsListed(s, poolId)).byType["edgevis-camera"]).toEqual({ total: 1, used: 0, free: 1 });
    // ...needs no renewal: still licensed a year later with no contact at all...
    t.clock.advance(365 * DAY);
    expect(s.leases.standing("old-1", "cam-1", t.clock.now())).toBe("licensed");
    expect(s.leases.dueForRenewal(t.clock.now()).filter((l) => l.encoderId === "old-1")).toEqual([]);
    // ...and is recorded, so the customer sees it.
    const { allocations } = await s.allocation.listAllocations({ encoderId: "old-1" });
    expect(allocations.length).toBeGreaterThan(0);
    for (const allocation of allocations) {
      expect(allocation.kind).toBe(LicenceKind.LEGACY);
      expect(allocation.poolId).toBe("");
      expect(allocation.leaseExpiresAt).toBeUndefined();
    }
    expect(allocations.map((a) => a.cameraId)).toEqual(expect.arrayContaining(["cam-1", "cam-2"]));
    // The daily check keeps it, a year on.
    const [check] = await s.dailyCheck([{ encoderId: "old-1", firmwareVersion: "8.4.2" }]);
    expect(check!.errorCode).toBe("");
    expect(check!.revocations).toEqual([]);
    expect(check!.leases.every((l) => l.lease.perpetual)).toBe(true);
  });

  it("v9.2 hardware encoders acquire a licence from the pool for each camera", async () => {
    const { poolId, server: s } = await server();
    const { encoder, legacyLease } = await s.registerEncoder("enc-1", "HD-IP200", "9.2.0");
    expect(encoder!.licenceKind).toBe(LicenceKind.POOL);
    expect(legacyLease).toBeUndefined();
    const granted = await s.addCamera("enc-1", "cam-1");
    expect(granted.lease.lease).toMatchObject({ poolId, licenceType: "edgevis-camera", perpetual: false });
    expect(ms(granted.lease.lease.expiresAt)).toBeGreaterThan(t.clock.now().getTime());
    expect((await poolAsListed(s, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 1, free: 1 });
    // Later v9 versions too.
    await s.registerEncoder("enc-2", "HD-IP200", "9.3.1");
    expect((await s.addCamera("enc-2", "cam-1")).lease.lease.poolId).toBe(poolId);
  });

  it("hardware encoders on v9.0 or v9.1 are refused: hardware takes part in v9 licensing from v9.2", async () => {
    const { server: s } = await server();
    for (const version of ["9.0", "9.1.7"]) {
      const refused = await refusal(s.registerEncoder(`early-${version}`, "HD-IP200", version));
      expect(refused.code).toBe(Code.FailedPrecondition);
      expect(refused.rawMessage).toContain("9.2");
    }
    // A camera on such an encoder has nothing to draw from: the encoder was never registered.
    expect((await refusal(s.addCamera("early-9.0", "cam-1"))).code).toBe(Code.NotFound);
  });

  it("EVVR Containers from 9.0 acquire a licence of their own type", async () => {
    const { poolId, server: s } = await server({ evvr: 1 });
    await s.registerEncoder("box-1", "evvr-container", "9.0");
    const granted = await s.addCamera("box-1", "cam-1");
    // SPEC L6, L7: the container's cameras use the type the catalogue names for the model.
    expect(granted.lease.lease).toMatchObject({ poolId, licenceType: "evvr-camera" });
    expect((await poolAsListed(s, poolId)).byType).toEqual({ "edgevis-camera": { total: 2, used: 0, free: 2 }, "evvr-camera": { total: 1, used: 1, free: 0 } });
    // The evvr-camera licences are spent; edgevis-camera licences are not a substitute.
    await s.registerEncoder("box-2", "evvr-container", "9.1");
    expect((await refusal(s.addCamera("box-2", "cam-1"))).code).toBe(Code.ResourceExhausted);
  });

  it("an EVVR Container reporting firmware older than 9.0 is refused", async () => {
    const { server: s } = await server();
    const refused = await refusal(s.registerEncoder("box-old", "evvr-container", "8.9"));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("9.0");
  });

  it("the same rules apply at every daily check: an upgrade from v8 to v9.2 moves the encoder onto the pool", async () => {
    const { poolId, server: s } = await server();
    await s.registerEncoder("enc-up", "HD-IP200", "8.7");
    await s.addCamera("enc-up", "cam-1");
    expect((await poolAsListed(s, poolId)).byType["edgevis-camera"]!.used).toBe(0);
    // SPEC L6: the daily check reports 9.2 now; the legacy licence ends and cameras draw from the pool.
    const [check] = await s.dailyCheck([{ encoderId: "enc-up", firmwareVersion: "9.2" }]);
    expect(check!.errorCode).toBe("");
    expect(check!.revocations.map((r) => r.cameraId)).toContain("cam-1");
    const granted = await s.addCamera("enc-up", "cam-1");
    expect(granted.lease.lease).toMatchObject({ poolId, perpetual: false });
    expect((await poolAsListed(s, poolId)).byType["edgevis-camera"]!.used).toBe(1);
  });
});
