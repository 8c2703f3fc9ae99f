import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, DAY, EncoderKind, at, createPool, enrollServer, ensureLicenceType, ms, poolAsListed, putContainerModel, refusal } from "./support.js";

/**
 * FAQ: "Within CLS, all your licences are stored in a licensing pool, which contains the count
 * of licences you have purchased and the expiry date of those licences."
 */
describe("Where are my licences stored?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("in a licensing pool holding the count purchased per licence type and the expiry date", async () => {
    // SPEC L1: vendor staff record a purchase as a pool: counts per licence type and one expiry instant.
    const { accountId, poolId } = await seedAccount(t, { count: 5, expiresInMs: 200 * DAY });
    const { licenceType: evvr } = await putContainerModel(t);
    await t.vendor.pools.changeEntitlement({ poolId, counts: { [evvr]: 3 } });
    const { pool: asVendorSees } = await t.vendor.pools.getPool({ poolId });
    const expiry = ms(asVendorSees!.expiresAt);
    expect(expiry).toBe(ms(at(t, 200 * DAY)));

    // SPEC L2: the customer's server lists the pool with total, used and free per type, and its expiry.
    const server = await enrollServer(t, accountId, poolId);
    const listed = await poolAsListed(server, poolId);
    expect(listed.pool.accountId).toBe(accountId);
    expect(ms(listed.pool.expiresAt)).toBe(expiry);
    expect(listed.byType).toEqual({
      "edgevis-camera": { total: 5, used: 0, free: 5 },
      "evvr-camera": { total: 3, used: 0, free: 3 },
    });

    // Licences taken by cameras show as used; the rest stay free in the pool.
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.0");
    await server.addCamera("enc-1", "cam-1");
    await server.addCamera("enc-1", "cam-2");
    await server.registerEncoder("box-1", "evvr-container", "9.0.0");
    await server.addCamera("box-1", "cam-1");
    const afterUse = await poolAsListed(server, poolId);
    expect(afterUse.byType).toEqual({
      "edgevis-camera": { total: 5, used: 2, free: 3 },
      "evvr-camera": { total: 3, used: 1, free: 2 },
    });
  });

  it("licence types are data vendor staff add, not a fixed list, and every encoder model maps to one", async () => {
    // SPEC L1: a brand-new licence type can be sold without a release of CLS.
    await ensureLicenceType(t, "thermal-camera", "One thermal camera");
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    await t.vendor.pools.changeEntitlement({ poolId, counts: { "thermal-camera": 2 } });
    // SPEC L1a: the catalogue maps a model to the licence type its cameras use.
    await t.vendor.pools.putEncoderModel({ model: { model: "thermal-ip9", licenceType: "thermal-camera", kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("thermal-1", "thermal-ip9", "9.2");
    const granted = await server.addCamera("thermal-1", "cam-1");
    expect(granted.lease.lease.licenceType).toBe("thermal-camera");
    expect((await poolAsListed(server, poolId)).byType["thermal-camera"]).toEqual({ total: 2, used: 1, free: 1 });

    // SPEC L1a: a model missing from the catalogue is refused with a clear error.
    const unknown = await refusal(server.registerEncoder("mystery-1", "HD-IP999", "9.2"));
    expect(unknown.code).toBe(Code.FailedPrecondition);
    expect(unknown.rawMessage).toMatch(/unknown encoder model.*hd-ip999/i);
  });

  it("a customer sees only their own account's pools", async () => {
    const mine = await seedAccount(t, { count: 1 });
    const theirs = await seedAccount(t, { count: 9 });
    await createPool(t, mine.accountId, "second purchase", { "edgevis-camera": 4 });
    const server = await enrollServer(t, mine.accountId, mine.poolId);
    const { pools } = await server.pools.listPools({});
    expect(pools).toHaveLength(2);
    expect(pools.every((pool) => pool.accountId === mine.accountId)).toBe(true);
    expect(pools.map((pool) => pool.poolId)).not.toContain(theirs.poolId);
  });
});
