import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, DAY, at, enrollServer, ms, notificationsOf, poolAsListed, refusal } from "./support.js";

/**
 * FAQ: "Any changes to your licence entitlements (licence counts or an updated expiry date)
 * can be applied by Digital Barriers to your licensing pool, making them immediately
 * available to your installation."
 */
describe("Are changes to my licence entitlements immediately available?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a raised count lets the very next camera in, with no restart and nothing for the customer to do", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    await server.addCamera("enc-1", "cam-1");
    expect((await refusal(server.addCamera("enc-1", "cam-2"))).code).toBe(Code.ResourceExhausted);

    // SPEC L4: vendor staff raise the count; the very next request sees it.
    await t.vendor.pools.changeEntitlement({ poolId, counts: { "edgevis-camera": 3 } });
    const granted = await server.addCamera("enc-1", "cam-2");
    expect(granted.lease.lease.poolId).toBe(poolId);
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 3, used: 2, free: 1 });

    // SPEC L15, L16: the change is notified to the customer and audited with the staff actor.
    const changes = await notificationsOf(t, accountId, "entitlement.changed");
    expect(changes.map((n) => n.data)).toEqual([expect.objectContaining({ pool_id: poolId, counts_before: { "edgevis-camera": 1 }, counts_after: { "edgevis-camera": 3 } })]);
    const { entries } = await t.vendor.pools.listAudit({ accountId });
    expect(entries).toContainEqual(expect.objectContaining({ action: "entitlement.changed", actor: "staff:test@vendor.example", subject: poolId }));
  });

  it("an extended expiry is used by the very next lease", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 2, expiresInMs: 10 * DAY });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    const before = await server.addCamera("enc-1", "cam-1");
    // SPEC L9: the lease is capped by the pool's expiry, 10 days away.
    expect(ms(before.lease.lease.expiresAt)).toBe(ms(at(t, 10 * DAY)));

    // SPEC L4: the vendor moves the expiry a year out; the next lease runs its full 30 days.
    await t.vendor.pools.changeEntitlement({ poolId, expiresAt: at(t, 365 * DAY) });
    const after = await server.addCamera("enc-1", "cam-2");
    expect(ms(after.lease.lease.expiresAt)).toBe(ms(at(t, 30 * DAY)));
    expect(ms((await poolAsListed(server, poolId)).pool.expiresAt)).toBe(ms(at(t, 365 * DAY)));
    const [check] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    for (const lease of check!.leases) expect(ms(lease.lease.expiresAt)).toBe(ms(at(t, 30 * DAY)));
  });

  it("an expiry brought forward caps the very next lease, and ends the licences at the new date", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    await server.addCamera("enc-1", "cam-1");

    // SPEC L4, L5: the vendor moves the expiry to 3 days from now.
    await t.vendor.pools.changeEntitlement({ poolId, expiresAt: at(t, 3 * DAY) });
    const next = await server.addCamera("enc-1", "cam-2");
    expect(ms(next.lease.lease.expiresAt)).toBe(ms(at(t, 3 * DAY)));
    t.clock.advance(DAY);
    const [check] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(check!.leases.map((l) => ms(l.lease.expiresAt))).toEqual([ms(at(t, 2 * DAY)), ms(at(t, 2 * DAY))]);

    t.clock.advance(2 * DAY);
    expect((await refusal(server.addCamera("enc-1", "cam-3"))).code).toBe(Code.FailedPrecondition);
    const [after] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(after!.revocations.map((r) => r.reason)).toEqual(["pool_expired", "pool_expired"]);
  });

  it("a count lowered below use keeps existing licences until the next daily check, which revokes the newest first", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 4 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-a", "HD-IP200", "9.2");
    await server.registerEncoder("enc-b", "HD-IP200", "9.2");
    // Granted in this order: a/1, b/1, a/2, b/2 (newest).
    for (const [encoder, camera] of [["enc-a", "cam-1"], ["enc-b", "cam-1"], ["enc-a", "cam-2"], ["enc-b", "cam-2"]] as const) {
      await server.addCamera(encoder, camera);
    }

    // SPEC L4: lowered from 4 to 2 while 4 are in use.
    await t.vendor.pools.changeEntitlement({ poolId, counts: { "edgevis-camera": 2 } });
    // Licences already held keep working: no new grant, but the existing ones still renew by re-adding.
    expect((await refusal(server.addCamera("enc-a", "cam-3"))).code).toBe(Code.ResourceExhausted);
    const again = await server.addCamera("enc-b", "cam-2");
    expect(again.lease.lease.cameraId).toBe("cam-2");
    for (const [encoder, camera] of [["enc-a", "cam-1"], ["enc-b", "cam-1"], ["enc-a", "cam-2"], ["enc-b", "cam-2"]] as const) {
      expect(server.leases.standing(encoder, camera, t.clock.now())).toBe("licensed");
    }
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 4, free: 0 });

    // The next daily check: the two most recently acquired (b/2, then a/2) are revoked.
    t.clock.advance(DAY);
    const outcomes = await server.dailyCheck([
      { encoderId: "enc-a", firmwareVersion: "9.2" },
      { encoderId: "enc-b", firmwareVersion: "9.2" },
    ]);
    const revoked = outcomes.flatMap((o) => o.revocations.map((r) => ({ camera: `${r.encoderId}/${r.cameraId}`, reason: r.reason })));
    expect(revoked.sort((x, y) => x.camera.localeCompare(y.camera))).toEqual([
      { camera: "enc-a/cam-2", reason: "entitlement_lowered" },
      { camera: "enc-b/cam-2", reason: "entitlement_lowered" },
    ]);
    const renewed = outcomes.flatMap((o) => o.leases.map((l) => `${l.lease.encoderId}/${l.lease.cameraId}`));
    expect(renewed.sort()).toEqual(["enc-a/cam-1", "enc-b/cam-1"]);
    expect(server.leases.standing("enc-b", "cam-2", t.clock.now())).toBe("unlicensed");
    expect(server.leases.standing("enc-a", "cam-1", t.clock.now())).toBe("licensed");
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 2, free: 0 });

    // SPEC L15: the customer is told about each revoked licence.
    const notices = await notificationsOf(t, accountId, "licence.revoked");
    expect(notices.map((n) => `${n.data.encoder_id}/${n.data.camera_id}:${n.data.reason}`).sort()).toEqual([
      "enc-a/cam-2:entitlement_lowered",
      "enc-b/cam-2:entitlement_lowered",
    ]);
    // Nothing else changed: the revoked allocations are listed as revoked, the rest still active.
    const { allocations } = await server.allocation.listAllocations({ includeEnded: true });
    const states = Object.fromEntries(allocations.map((a) => [`${a.encoderId}/${a.cameraId}`, a.endReason || "active"]));
    expect(states).toEqual({ "enc-a/cam-1": "active", "enc-b/cam-1": "active", "enc-a/cam-2": "entitlement_lowered", "enc-b/cam-2": "entitlement_lowered" });
  });

  it("a lowered count revokes newest first across all the servers sharing the pool", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 3 });
    const older = await enrollServer(t, accountId, poolId, "older");
    const newer = await enrollServer(t, accountId, poolId, "newer");
    await older.registerEncoder("enc-1", "HD-IP200", "9.2");
    await newer.registerEncoder("enc-1", "HD-IP200", "9.2");
    await older.addCamera("enc-1", "cam-1");
    await older.addCamera("enc-1", "cam-2");
    await newer.addCamera("enc-1", "cam-1"); // the newest

    await t.vendor.pools.changeEntitlement({ poolId, counts: { "edgevis-camera": 2 } });
    t.clock.advance(DAY);
    // The older server checks first; it keeps both of its licences.
    const [olderCheck] = await older.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(olderCheck!.revocations).toEqual([]);
    expect(olderCheck!.leases).toHaveLength(2);
    const [newerCheck] = await newer.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(newerCheck!.revocations.map((r) => [r.cameraId, r.reason])).toEqual([["cam-1", "entitlement_lowered"]]);
  });
});
