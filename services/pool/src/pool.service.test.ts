import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerCaller } from "@cls/auth";
import { DAY_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { createPoolTestContext, type PoolTestContext } from "./test-context.js";

let t: PoolTestContext;
let camera: string;
let evvr: string;
beforeAll(async () => {
  t = await createPoolTestContext();
  camera = await t.newLicenceType("edgevis-camera");
  evvr = await t.newLicenceType("evvr-camera");
});
afterAll(async () => {
  await t?.close();
});

const serverOf = (accountId: string): ServerCaller => ({ kind: "server", serverId: newId("srv"), accountId });

describe("ListPools (SPEC L2, L14)", () => {
  it("lists every pool of the caller's account with total, used, free and expiry per type", async () => {
    const accountId = await t.newAccount();
    const sooner = await t.createPool(accountId, { [camera]: 10, [evvr]: 4 }, { expiresInDays: 30 });
    const later = await t.createPool(accountId, { [camera]: 5 }, { expiresInDays: 400 });
    t.neighbours.used.set(sooner, { [camera]: 7, [evvr]: 4 });
    t.neighbours.used.set(later, { [camera]: 1 });

    const { pools } = await t.publicApi(serverOf(accountId)).listPools({});

    expect(pools.map((p) => p.poolId)).toEqual([sooner, later]);
    const summary = pools.map((p) => ({
      poolId: p.poolId,
      accountId: p.accountId,
      expiresInDays: Math.round((timestampDate(p.expiresAt!).getTime() - t.clock.now().getTime()) / DAY_MS),
      entitlements: Object.fromEntries(p.entitlements.map((e) => [e.licenceType, [e.total, e.used, e.free]])),
    }));
    expect(summary).toEqual([
      { poolId: sooner, accountId, expiresInDays: 30, entitlements: { [camera]: [10, 7, 3], [evvr]: [4, 4, 0] } },
      { poolId: later, accountId, expiresInDays: 400, entitlements: { [camera]: [5, 1, 4] } },
    ]);
  });

  it("never shows another account's pools, nor asks allocation about them (SPEC L11)", async () => {
    const mine = await t.newAccount();
    const theirs = await t.newAccount();
    const myPool = await t.createPool(mine, { [camera]: 3 });
    const theirPools = [await t.createPool(theirs, { [camera]: 50 }), await t.createPool(theirs, { [evvr]: 9 })];
    const callsBefore = t.neighbours.getPoolUsageCalls.length;

    const { pools } = await t.publicApi(serverOf(mine)).listPools({});

    expect(pools.map((p) => p.poolId)).toEqual([myPool]);
    expect(pools.every((p) => p.accountId === mine)).toBe(true);
    const asked = t.neighbours.getPoolUsageCalls.slice(callsBefore).flatMap((call) => call.poolIds);
    expect(asked).toEqual([myPool]);
    expect(asked.some((id) => theirPools.includes(id))).toBe(false);
  });

  it("shows free as 0, never negative, while use is above a lowered count (SPEC L4)", async () => {
    const accountId = await t.newAccount();
    const poolId = await t.createPool(accountId, { [camera]: 5 });
    await t.admin.changeEntitlement({ poolId, counts: { [camera]: 2 } });
    t.neighbours.used.set(poolId, { [camera]: 5 });

    const { pools } = await t.publicApi(serverOf(accountId)).listPools({});

    expect(pools[0]!.entitlements).toMatchObject([{ licenceType: camera, total: 2, used: 5, free: 0 }]);
    expect(pools[0]!.version).toBe(2n);
  });

  it("answers an empty list for an account with no pools, without calling allocation", async () => {
    const callsBefore = t.neighbours.getPoolUsageCalls.length;
    const { pools } = await t.publicApi(serverOf(newId("acc"))).listPools({});
    expect(pools).toEqual([]);
    expect(t.neighbours.getPoolUsageCalls).toHaveLength(callsBefore);
  });

  it("answers unavailable, safe to retry, while allocation cannot report use (SPEC error table)", async () => {
    const accountId = await t.newAccount();
    await t.createPool(accountId, { [camera]: 1 });
    t.neighbours.failUsage = new ConnectError("allocation is down", Code.Unavailable);
    try {
      const error = await t.publicApi(serverOf(accountId)).listPools({}).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code).toBe(Code.Unavailable);
    } finally {
      t.neighbours.failUsage = undefined;
    }
    expect((await t.publicApi(serverOf(accountId)).listPools({})).pools).toHaveLength(1);
  });

  it("refuses a call without an authenticated caller with unauthenticated", async () => {
    const error = await t.publicApi(undefined).listPools({}).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.Unauthenticated);
  });
});
