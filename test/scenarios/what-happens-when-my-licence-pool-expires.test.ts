import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, DAY, at, enrollServer, ms, notificationsOf, poolAsListed, refusal } from "./support.js";

const MINUTE = 60_000;

/**
 * FAQ: a pool "contains the count of licences you have purchased and the expiry date of those
 * licences". What the expiry date means (SPEC L5): from that instant the pool grants and renews
 * nothing, no lease outlives it, and the customer hears about it 30, 7 and 1 days ahead and
 * when it happens.
 */
describe("What happens when my licence pool expires?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Every service's scheduled jobs, run twice in a row and three times at once, as replicas would. */
  async function runJobsLikeReplicas() {
    const pool = t.mesh.modules.pool;
    await pool.runJobs!();
    await pool.runJobs!();
    await Promise.all([pool.runJobs!(), pool.runJobs!(), pool.runJobs!(), t.mesh.modules.allocation.runJobs!()]);
  }

  async function expiryNotices(accountId: string) {
    const expiring = await notificationsOf(t, accountId, "pool.expiring");
    const expired = await notificationsOf(t, accountId, "pool.expired");
    return [...expiring, ...expired].sort((a, b) => ms(a.occurredAt) - ms(b.occurredAt)).map((n) => n.data.notice);
  }

  it("the customer is told 30, 7 and 1 days before expiry and at expiry, each exactly once", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1, expiresInMs: 40 * DAY });
    const expiry = t.clock.now().getTime() + 40 * DAY;

    await runJobsLikeReplicas();
    expect(await expiryNotices(accountId)).toEqual([]);

    // SPEC L5, L15: each notice once it is due, and only once, however many replicas run the job.
    t.clock.set(new Date(expiry - 30 * DAY - MINUTE));
    await runJobsLikeReplicas();
    expect(await expiryNotices(accountId)).toEqual([]);
    t.clock.set(new Date(expiry - 30 * DAY));
    await runJobsLikeReplicas();
    expect(await expiryNotices(accountId)).toEqual(["30d"]);

    t.clock.set(new Date(expiry - 7 * DAY + MINUTE));
    await runJobsLikeReplicas();
    expect(await expiryNotices(accountId)).toEqual(["30d", "7d"]);

    t.clock.set(new Date(expiry - 1 * DAY + MINUTE));
    await runJobsLikeReplicas();
    t.clock.set(new Date(expiry - MINUTE));
    await runJobsLikeReplicas();
    expect(await expiryNotices(accountId)).toEqual(["30d", "7d", "1d"]);

    t.clock.set(new Date(expiry));
    await runJobsLikeReplicas();
    t.clock.advance(DAY);
    await runJobsLikeReplicas();
    expect(await expiryNotices(accountId)).toEqual(["30d", "7d", "1d", "expired"]);
    const [expired] = await notificationsOf(t, accountId, "pool.expired");
    expect(expired!.data).toMatchObject({ pool_id: poolId, expires_at: new Date(expiry).toISOString() });
  });

  it("no lease runs past the pool's expiry, and from that instant nothing is granted or renewed", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 3, expiresInMs: 10 * DAY });
    const expiry = t.clock.now().getTime() + 10 * DAY;
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");

    // SPEC L5, L9: a lease's expiry is capped by the pool's.
    const first = await server.addCamera("enc-1", "cam-1");
    expect(ms(first.lease.lease.expiresAt)).toBe(expiry);
    t.clock.set(new Date(expiry - 2 * DAY));
    const [renewal] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(renewal!.leases.map((l) => ms(l.lease.expiresAt))).toEqual([expiry]);
    expect(ms(renewal!.leases[0]!.lease.warnAfter)).toBeLessThanOrEqual(expiry);
    const second = await server.addCamera("enc-1", "cam-2");
    expect(ms(second.lease.lease.expiresAt)).toBe(expiry);

    // At the expiry instant the server's leases lapse...
    t.clock.set(new Date(expiry));
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("lapsed");
    // ...no new licence is granted...
    const refused = await refusal(server.addCamera("enc-1", "cam-3"));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("expired");
    // ...and the daily check renews nothing: it revokes, saying why.
    const [check] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(check!.errorCode).toBe("");
    expect(check!.leases).toEqual([]);
    expect(check!.revocations.map((r) => [r.cameraId, r.reason]).sort()).toEqual([
      ["cam-1", "pool_expired"],
      ["cam-2", "pool_expired"],
    ]);
    const revoked = await notificationsOf(t, accountId, "licence.revoked");
    expect(revoked.map((n) => n.data.reason)).toEqual(["pool_expired", "pool_expired"]);

    // No lease CLS recorded ever ran past the pool's expiry.
    const { allocations } = await server.allocation.listAllocations({ includeEnded: true });
    expect(allocations).toHaveLength(2);
    for (const allocation of allocations) expect(ms(allocation.leaseExpiresAt)).toBeLessThanOrEqual(expiry);
    // Re-adding a camera is still refused.
    expect((await refusal(server.addCamera("enc-1", "cam-1"))).code).toBe(Code.FailedPrecondition);
  });

  it("a server cannot be switched onto an expired pool", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 3 });
    const { pool: short } = await t.vendor.pools.createPool({ accountId, name: "old purchase", expiresAt: at(t, DAY), counts: { "edgevis-camera": 3 } });
    const server = await enrollServer(t, accountId, poolId);
    t.clock.advance(DAY);
    const refused = await refusal(server.allocation.switchPool({ poolId: short!.poolId }));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect((await poolAsListed(server, poolId)).pool.poolId).toBe(poolId);
  });

  it("a renewal bought after expiry is available at once", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1, expiresInMs: 5 * DAY });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    t.clock.advance(5 * DAY);
    expect((await refusal(server.addCamera("enc-1", "cam-1"))).code).toBe(Code.FailedPrecondition);
    // SPEC L4: the vendor moves the expiry a year out; the very next request is granted.
    await t.vendor.pools.changeEntitlement({ poolId, expiresAt: at(t, 365 * DAY) });
    const granted = await server.addCamera("enc-1", "cam-1");
    expect(ms(granted.lease.lease.expiresAt)).toBe(ms(at(t, 30 * DAY)));
  });
});
