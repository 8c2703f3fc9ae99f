import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CAMERA, createAllocationTestContext, type AllocationTestContext } from "./test-context.js";

/** Counts grants and refusals of `n` concurrent acquires of distinct cameras. */
async function acquireConcurrently(t: AllocationTestContext, capacity: number, n: number) {
  const server = await t.newServer(await t.newPool({ [CAMERA]: capacity }));
  await t.registered(server, "enc-1");
  await t.registered(server, "enc-2");
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => server.api.acquireLicence({ encoderId: i % 2 === 0 ? "enc-1" : "enc-2", cameraId: `cam-${i}` })),
  );
  const refusals = results.flatMap((r) => (r.status === "rejected" ? [ConnectError.from(r.reason).code] : []));
  return { server, granted: results.length - refusals.length, refusals };
}

describe("the pool allocator with Redis (SPEC L7a)", () => {
  let t: AllocationTestContext;
  beforeAll(async () => {
    t = await createAllocationTestContext();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("keeps granting, and never over-grants, after Redis loses its fence counters", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 4 }));
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    const fenceKeys = await t.locks.redis.keys(`${t.lockPrefix}fence:*`);
    expect(fenceKeys.length).toBeGreaterThan(0);
    const fenceInPostgres = await t.db.selectFrom("pool_usage").select("fence").where("pool_id", "=", server.pool.poolId).executeTakeFirstOrThrow();
    expect(fenceInPostgres.fence).toBeGreaterThan(0);

    // Redis restarts empty: the next fence it hands out is older than what Postgres has seen.
    await t.locks.redis.del(...fenceKeys);
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-3" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-4" });

    expect((await t.usage(server.pool.poolId)).used).toBe(4);
    expect(await t.activeCount(server.pool.poolId)).toBe(4);
    const error = ConnectError.from(await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-5" }).catch((e: unknown) => e));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect((await t.usage(server.pool.poolId)).used).toBe(4);
  });

  it("is exact when many replicas' worth of acquires race on a pool of 1", async () => {
    const { server, granted, refusals } = await acquireConcurrently(t, 1, 20);
    expect(granted).toBe(1);
    expect(refusals.every((code) => code === Code.ResourceExhausted)).toBe(true);
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
    expect(await t.activeCount(server.pool.poolId)).toBe(1);
  });
});

describe("the pool allocator without Redis (SPEC L7a, DESIGN: allocation works on Postgres alone)", () => {
  let t: AllocationTestContext;
  beforeAll(async () => {
    // Nothing listens on port 1: every lock call fails as if Redis were down.
    t = await createAllocationTestContext({ redisUrl: "redis://127.0.0.1:1" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("still grants, and 20 concurrent acquires on a pool of 3 take exactly 3", async () => {
    const { server, granted, refusals } = await acquireConcurrently(t, 3, 20);
    expect(granted).toBe(3);
    expect(refusals).toHaveLength(17);
    expect(refusals.every((code) => code === Code.ResourceExhausted)).toBe(true);
    expect((await t.usage(server.pool.poolId)).used).toBe(3);
    expect(await t.activeCount(server.pool.poolId)).toBe(3);
  });
});

describe("a caller that has gone away (SPEC L7a: no licence nobody will hear of)", () => {
  let t: AllocationTestContext;
  beforeAll(async () => {
    t = await createAllocationTestContext();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("takes nothing for a request whose caller aborted before the pool was locked", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1");
    const now = t.clock.now();
    const outcome = await t.context.allocator.grant({
      accountId: server.caller.accountId,
      serverId: server.caller.serverId,
      encoderId: "enc-1",
      cameraId: "cam-gone",
      poolId: server.pool.poolId,
      licenceType: CAMERA,
      now,
      leaseExpiresAt: new Date(now.getTime() + 86_400_000),
      signal: AbortSignal.abort(),
    });
    expect(outcome.kind).toBe("abandoned");
    expect((await t.usage(server.pool.poolId)).used).toBe(0);
    expect(await t.activeCount(server.pool.poolId)).toBe(0);
  });
});
