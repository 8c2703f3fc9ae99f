import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "@cls/db";
import { acquireLicence } from "./acquire.js";
import { createAcquireContextLoader, type ReadAcquireContexts } from "./acquire-context.loader.js";
import { loadAcquireContexts, type AcquireContext, type AcquireContextKey } from "./acquire-context.repository.js";
import { CAMERA, CONTAINER_MODEL, createAllocationTestContext, EVVR_CAMERA, type AllocationTestContext } from "./test-context.js";

const key = (i: number): AcquireContextKey => ({ serverId: "srv-1", encoderId: "enc-1", cameraId: `cam-${i}` });
const contextFor = (k: AcquireContextKey): AcquireContext => ({
  server: undefined,
  encoder: undefined,
  licenceType: k.cameraId,
  poolExpiresAt: undefined,
  existing: undefined,
});

/** A read whose queries stay in flight until the test answers or fails them. */
function heldReads() {
  const queries: Array<{ keys: readonly AcquireContextKey[]; answer(): void; fail(error: Error): void }> = [];
  const read: ReadAcquireContexts = (keys) =>
    new Promise((resolve, reject) => queries.push({ keys, answer: () => resolve(keys.map(contextFor)), fail: reject }));
  return { read, queries };
}

const codeOf = (result: PromiseSettledResult<unknown>) => (result.status === "rejected" ? ConnectError.from(result.reason).code : "granted");
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("the acquire pre-read loader", () => {
  it("sends a call at once when no query is in flight: no timer, no wait", () => {
    const { read, queries } = heldReads();
    void createAcquireContextLoader(read).load(key(1));
    expect(queries.map((q) => q.keys)).toEqual([[key(1)]]);
  });

  it("runs at most two queries at once; calls arriving meanwhile go together in the next, at most 256 each", async () => {
    const { read, queries } = heldReads();
    const loader = createAcquireContextLoader(read);

    const answers = Array.from({ length: 600 }, (_, i) => loader.load(key(i)));
    expect(queries.map((q) => q.keys.length)).toEqual([1, 1]);

    queries[0]!.answer();
    await settle();
    expect(queries.map((q) => q.keys.length)).toEqual([1, 1, 256]);
    queries[1]!.answer();
    await settle();
    expect(queries.map((q) => q.keys.length)).toEqual([1, 1, 256, 256]);
    queries[2]!.answer();
    queries[3]!.answer();
    await settle();
    expect(queries.map((q) => q.keys.length)).toEqual([1, 1, 256, 256, 86]);
    queries[4]!.answer();

    const contexts = await Promise.all(answers);
    expect(contexts.map((c) => c.licenceType)).toEqual(Array.from({ length: 600 }, (_, i) => `cam-${i}`));
  });

  it("fails every call of a failed query with that query's error, and still answers the calls of the next", async () => {
    const { read, queries } = heldReads();
    const loader = createAcquireContextLoader(read);
    const first = loader.load(key(1));
    const second = loader.load(key(2));
    const waiting = [3, 4, 5].map((i) => loader.load(key(i)));
    const down = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });

    queries[0]!.answer();
    await settle();
    queries[2]!.fail(down);
    for (const call of waiting) await expect(call).rejects.toBe(down);
    queries[1]!.answer();
    await settle();

    expect(queries.map((q) => q.keys.map((k) => k.cameraId))).toEqual([["cam-1"], ["cam-2"], ["cam-3", "cam-4", "cam-5"]]);
    await expect(first).resolves.toMatchObject({ licenceType: "cam-1" });
    await expect(second).resolves.toMatchObject({ licenceType: "cam-2" });
    const after = loader.load(key(6));
    queries[3]!.answer();
    await expect(after).resolves.toMatchObject({ licenceType: "cam-6" });
  });
});

describe("concurrent acquires sharing the pre-read (SPEC L7)", () => {
  let t: AllocationTestContext;
  beforeAll(async () => {
    t = await createAllocationTestContext();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("each gets the answer for its own server, encoder and camera", async () => {
    const mine = await t.newServer(await t.newPool({ [CAMERA]: 5 }));
    const other = await t.newServer(await t.newPool({ [EVVR_CAMERA]: 5 }));
    await t.registered(mine, "enc-1");
    await t.registered(other, "box-1", { model: CONTAINER_MODEL, firmware: "9.0" });
    const held = await mine.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-held" });
    const unbound = t.publicApi({ kind: "server", serverId: newId("srv"), accountId: newId("acc") });

    const [fresh, repeat, container, ghost, foreign, stranger] = await Promise.allSettled([
      mine.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-new" }),
      mine.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-held" }),
      other.api.acquireLicence({ encoderId: "box-1", cameraId: "cam-new" }),
      mine.api.acquireLicence({ encoderId: "ghost", cameraId: "cam-1" }),
      other.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" }),
      unbound.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" }),
    ]);

    expect(fresh).toMatchObject({ status: "fulfilled", value: { allocation: { poolId: mine.pool.poolId, licenceType: CAMERA, cameraId: "cam-new" } } });
    // SPEC L7: a camera that already holds a licence gets the same allocation back.
    expect(repeat).toMatchObject({ status: "fulfilled", value: { allocation: { allocationId: held.allocation!.allocationId } } });
    expect(container).toMatchObject({ status: "fulfilled", value: { allocation: { poolId: other.pool.poolId, licenceType: EVVR_CAMERA, cameraId: "cam-new" } } });
    expect(codeOf(ghost)).toBe(Code.NotFound);
    // SPEC L11: another server's encoder id is not this server's encoder.
    expect(codeOf(foreign)).toBe(Code.NotFound);
    expect(codeOf(stranger)).toBe(Code.FailedPrecondition);
    expect((await t.usage(mine.pool.poolId)).used).toBe(2);
    expect((await t.usage(other.pool.poolId, EVVR_CAMERA)).used).toBe(1);
  });

  it("serves many concurrent acquires with fewer pre-read queries than calls", async () => {
    const servers = await Promise.all(Array.from({ length: 4 }, async () => t.newServer(await t.newPool({ [CAMERA]: 16 }))));
    for (const server of servers) await t.registered(server, "enc-1");
    const batchSizes: number[] = [];
    const ctx = {
      ...t.context,
      acquireContexts: createAcquireContextLoader((keys) => {
        batchSizes.push(keys.length);
        return loadAcquireContexts(t.db, keys);
      }),
    };

    const acquired = await Promise.all(
      Array.from({ length: 64 }, (_, i) => acquireLicence(ctx, servers[i % 4]!.caller, { encoderId: "enc-1", cameraId: `cam-${i}` })),
    );

    expect(acquired.map((a) => [a.allocation.server_id, a.allocation.camera_id])).toEqual(
      Array.from({ length: 64 }, (_, i) => [servers[i % 4]!.caller.serverId, `cam-${i}`]),
    );
    expect(batchSizes.reduce((sum, n) => sum + n, 0)).toBe(64);
    expect(batchSizes.length).toBeLessThanOrEqual(3);
    for (const server of servers) expect((await t.usage(server.pool.poolId)).used).toBe(16);
  });
});
