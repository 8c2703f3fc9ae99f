import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { DAY, at, createPool, customerClients, enrollServer, ms } from "./support.js";

/**
 * FAQ: "Yes. For example, if you have made two different purchases with different expiry
 * dates, then these can be in separate pools. Both of these will be listed in your licensing
 * account."
 */
describe("Can I have more than one licence pool?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("two purchases with different expiry dates are two pools, both listed with their own counts", async () => {
    // SPEC L2: the first purchase (seeded) and a second one with a later expiry and other counts.
    const { accountId, poolId: first } = await seedAccount(t, { count: 2, expiresInMs: 90 * DAY });
    const second = await createPool(t, accountId, "2027 expansion", { "edgevis-camera": 10 }, 400 * DAY);

    const server = await enrollServer(t, accountId, first);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    await server.addCamera("enc-1", "cam-1");

    const { pools } = await server.pools.listPools({});
    expect(pools).toHaveLength(2);
    const byId = new Map(pools.map((pool) => [pool.poolId, pool]));
    // Each pool keeps its own expiry...
    expect(ms(byId.get(first)!.expiresAt)).toBe(ms(at(t, 90 * DAY)));
    expect(ms(byId.get(second.poolId)!.expiresAt)).toBe(ms(at(t, 400 * DAY)));
    // ...and its own total, used and free per type: use in one does not show in the other.
    expect(byId.get(first)!.entitlements).toEqual([expect.objectContaining({ licenceType: "edgevis-camera", total: 2, used: 1, free: 1 })]);
    expect(byId.get(second.poolId)!.entitlements).toEqual([expect.objectContaining({ licenceType: "edgevis-camera", total: 10, used: 0, free: 10 })]);

    // Vendor staff see the same pools on the account.
    const { pools: vendorView } = await t.vendor.pools.listAccountPools({ accountId });
    expect(vendorView.map((pool) => pool.poolId).sort()).toEqual([first, second.poolId].sort());
  });

  it("servers of one account can draw from different pools at the same time", async () => {
    const { accountId, poolId: first } = await seedAccount(t, { count: 1 });
    const second = await createPool(t, accountId, "warehouse purchase", { "edgevis-camera": 1 });
    const office = await enrollServer(t, accountId, first, "office");
    const warehouse = await enrollServer(t, accountId, second.poolId, "warehouse");
    for (const server of [office, warehouse]) await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    const a = await office.addCamera("enc-1", "cam-1");
    const b = await warehouse.addCamera("enc-1", "cam-1");
    expect(a.lease.lease.poolId).toBe(first);
    expect(b.lease.lease.poolId).toBe(second.poolId);

    const { pools } = await office.pools.listPools({});
    for (const pool of pools) expect(pool.entitlements).toEqual([expect.objectContaining({ total: 1, used: 1, free: 0 })]);
  });

  it("the customer can list every pool with an account API key too", async () => {
    const { accountId, poolId: first } = await seedAccount(t, { count: 3 });
    const second = await createPool(t, accountId, "second", { "edgevis-camera": 4 });
    const customer = await customerClients(t, accountId);
    const { pools } = await customer.pools.listPools({});
    expect(pools.map((pool) => [pool.poolId, pool.entitlements[0]?.total]).sort()).toEqual(
      [
        [first, 3],
        [second.poolId, 4],
      ].sort(),
    );
  });
});
