import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { AllocationState, EncoderKind } from "@cls/proto";
import { CAMERA, createAllocationTestContext, EVVR_CAMERA, HARDWARE_MODEL, rejection, type AllocationTestContext } from "./test-context.js";

let t: AllocationTestContext;
beforeAll(async () => {
  t = await createAllocationTestContext();
});
afterAll(async () => {
  await t?.close();
});

const inDays = (days: number) => timestampFromDate(new Date(t.clock.now().getTime() + days * DAY_MS));

describe("ApplyEntitlement (SPEC L4)", () => {
  it("applies a newer version at once: a raised count grants on the very next request", async () => {
    const pool = await t.newPool({ [CAMERA]: 1 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect((await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" }))).code).toBe(Code.ResourceExhausted);

    const { applied } = await t.admin.applyEntitlement({ ...pool, expiresAt: inDays(365), counts: { [CAMERA]: 2 }, version: 2n });

    expect(applied).toBe(true);
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    expect(await t.usage(pool.poolId)).toMatchObject({ capacity: 2, used: 2 });
  });

  it("ignores an older or repeated version (applied: false) and keeps the newer counts and expiry", async () => {
    const pool = await t.newPool({ [CAMERA]: 1 });
    const newer = inDays(200);
    expect((await t.admin.applyEntitlement({ ...pool, expiresAt: newer, counts: { [CAMERA]: 5 }, version: 3n })).applied).toBe(true);

    const older = await t.admin.applyEntitlement({ ...pool, expiresAt: inDays(400), counts: { [CAMERA]: 50 }, version: 2n });
    const repeated = await t.admin.applyEntitlement({ ...pool, expiresAt: inDays(400), counts: { [CAMERA]: 50 }, version: 3n });

    expect([older.applied, repeated.applied]).toEqual([false, false]);
    const usage = await t.usage(pool.poolId);
    expect(usage.capacity).toBe(5);
    expect(usage.expires_at.getTime()).toBe(new Date(Number(newer.seconds) * 1000).getTime());
    const copy = await t.db.selectFrom("pools").selectAll().where("pool_id", "=", pool.poolId).executeTakeFirstOrThrow();
    expect(copy.version).toBe(3);
  });

  it("keeps used when counts change, adds new types, and moves the expiry of every type", async () => {
    const pool = await t.newPool({ [CAMERA]: 3 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    const expiry = inDays(90);

    await t.admin.applyEntitlement({ ...pool, expiresAt: expiry, counts: { [CAMERA]: 4, [EVVR_CAMERA]: 2 }, version: 2n });

    const camera = await t.usage(pool.poolId, CAMERA);
    const evvr = await t.usage(pool.poolId, EVVR_CAMERA);
    expect([camera.capacity, camera.used, evvr.capacity, evvr.used]).toEqual([4, 1, 2, 0]);
    expect(camera.expires_at).toEqual(evvr.expires_at);
    expect(camera.expires_at.getTime()).toBe(Number(expiry.seconds) * 1000);
  });

  it("refuses malformed input with invalid_argument naming the field, writing nothing", async () => {
    const base = { poolId: newId("pool"), accountId: newId("acc"), expiresAt: inDays(10), counts: { [CAMERA]: 1 }, version: 1n };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ poolId: "" }, "pool_id"],
      [{ poolId: "pool_123" }, "pool_id"],
      [{ accountId: newId("pool") }, "account_id"],
      [{ expiresAt: undefined }, "expires_at"],
      [{ version: 0n }, "version"],
      [{ counts: { [CAMERA]: -1 } }, `counts[${CAMERA}]`],
      [{ counts: { "Not A Slug": 1 } }, "counts[Not A Slug]"],
    ];
    for (const [change, field] of cases) {
      const error = await rejection(t.admin.applyEntitlement({ ...base, ...change }));
      expect(error.code, field).toBe(Code.InvalidArgument);
      expect(error.rawMessage.startsWith(`${field}: `), error.rawMessage).toBe(true);
    }
    expect(await t.db.selectFrom("pools").selectAll().where("pool_id", "=", base.poolId).execute()).toEqual([]);
  });
});

describe("ApplyEncoderModel (SPEC L1a)", () => {
  it("updates the catalogue copy: a model's licence type change applies to the next acquisition", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1, [EVVR_CAMERA]: 1 }));
    await t.admin.applyEncoderModel({ model: { model: "minicam", licenceType: CAMERA, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
    await t.registered(server, "mini-1", { model: "minicam" });
    await t.admin.applyEncoderModel({ model: { model: "minicam", licenceType: EVVR_CAMERA, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });

    const { allocation } = await server.api.acquireLicence({ encoderId: "mini-1", cameraId: "cam-1" });

    expect(allocation?.licenceType).toBe(EVVR_CAMERA);
  });

  it("refuses an unspecified kind, a missing model and a bad minimum version with invalid_argument", async () => {
    const good = { model: "evvr-x", licenceType: EVVR_CAMERA, kind: EncoderKind.CONTAINER, minV9Version: "9.0" };
    const cases: Array<[Record<string, unknown> | undefined, string]> = [
      [undefined, "model"],
      [{ ...good, kind: EncoderKind.UNSPECIFIED }, "model.kind"],
      [{ ...good, minV9Version: "nine" }, "model.min_v9_version"],
      [{ ...good, model: "" }, "model.model"],
      [{ ...good, licenceType: "Bad Type" }, "model.licence_type"],
    ];
    for (const [model, field] of cases) {
      const error = await rejection(t.admin.applyEncoderModel(model ? { model } : {}));
      expect(error.code, field).toBe(Code.InvalidArgument);
      expect(error.rawMessage.startsWith(`${field}: `), error.rawMessage).toBe(true);
    }
    expect(await t.db.selectFrom("encoder_models").selectAll().where("model", "=", "evvr-x").execute()).toEqual([]);
  });
});

describe("BindServer", () => {
  it("refuses a pool that is unknown or belongs to another account with not_found (SPEC L11)", async () => {
    const pool = await t.newPool({ [CAMERA]: 1 });
    const serverId = newId("srv");
    expect((await rejection(t.admin.bindServer({ serverId, accountId: newId("acc"), poolId: pool.poolId }))).code).toBe(Code.NotFound);
    expect((await rejection(t.admin.bindServer({ serverId, accountId: pool.accountId, poolId: newId("pool") }))).code).toBe(Code.NotFound);
    expect(await t.db.selectFrom("servers").selectAll().where("server_id", "=", serverId).execute()).toEqual([]);
  });

  it("is harmless to repeat", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.admin.bindServer({ serverId: server.caller.serverId, accountId: server.pool.accountId, poolId: server.pool.poolId });
    expect(await t.db.selectFrom("servers").selectAll().where("server_id", "=", server.caller.serverId).execute()).toHaveLength(1);
  });
});

describe("ApplyServerRevocation (SPEC L11)", () => {
  it("frees the server's licences and its calls get permission_denied from then on", async () => {
    const pool = await t.newPool({ [CAMERA]: 2 });
    const server = await t.newServer(pool);
    const sibling = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await t.registered(server, "old-1", { firmware: "8.1" });
    await t.registered(sibling, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });

    const { released } = await t.admin.applyServerRevocation({ serverId: server.caller.serverId });

    expect(released).toBe(3);
    expect((await t.usage(pool.poolId)).used).toBe(0);
    const { allocations } = await t.admin.listAccountAllocations({ accountId: pool.accountId });
    expect(allocations.filter((a) => a.serverId === server.caller.serverId).every((a) => a.state === AllocationState.REVOKED && a.endReason === "server_revoked")).toBe(
      true,
    );
    const calls: Array<() => Promise<unknown>> = [
      () => server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-3" }),
      () => server.api.registerEncoder({ encoderId: "enc-2", model: HARDWARE_MODEL, firmwareVersion: "9.2" }),
      () => server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" }),
      () => server.api.checkEncoders({ encoders: [{ encoderId: "enc-1", firmwareVersion: "9.2" }] }),
      () => server.api.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1" }),
      () => server.api.switchPool({ poolId: pool.poolId }),
    ];
    for (const call of calls) {
      expect((await rejection(call())).code).toBe(Code.PermissionDenied);
    }
    // The freed capacity is there for the account's other servers.
    await sibling.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await sibling.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    expect((await t.usage(pool.poolId)).used).toBe(2);
  });

  it("is harmless to repeat", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect((await t.admin.applyServerRevocation({ serverId: server.caller.serverId })).released).toBe(1);
    expect((await t.admin.applyServerRevocation({ serverId: server.caller.serverId })).released).toBe(0);
    expect((await t.usage(server.pool.poolId)).used).toBe(0);
  });
});

describe("ApplyServerRevocation racing AcquireLicence (SPEC L11: revoking stops calls at once, licences freed)", () => {
  it("leaves the revoked server holding no active licence and the pool's used matching the rows", async () => {
    const pool = await t.newPool({ [CAMERA]: 5 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    // Both calls read their state, then queue behind a lock on the pool's usage row.
    const hold = await t.holdPoolUsage(pool.poolId);
    const acquire = server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-racing" });
    await t.waiters(1);
    const revoke = t.admin.applyServerRevocation({ serverId: server.caller.serverId });
    await t.waiters(2);
    await hold.release();
    await Promise.allSettled([acquire, revoke]);

    const active = await t.db.selectFrom("allocations").selectAll().where("server_id", "=", server.caller.serverId).where("state", "=", "active").execute();
    expect(active.map((a) => a.camera_id)).toEqual([]);
    expect((await t.usage(pool.poolId)).used).toBe(await t.activeCount(pool.poolId));
  });
});

describe("GetPoolUsage (SPEC L2)", () => {
  it("reports used per licence type for each pool asked about", async () => {
    const first = await t.newPool({ [CAMERA]: 3, [EVVR_CAMERA]: 3 });
    const second = await t.newPool({ [CAMERA]: 3 });
    const server = await t.newServer(first);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });

    const { usages } = await t.admin.getPoolUsage({ poolIds: [first.poolId, second.poolId] });

    expect(usages).toMatchObject([
      { poolId: first.poolId, used: { [CAMERA]: 2, [EVVR_CAMERA]: 0 } },
      { poolId: second.poolId, used: { [CAMERA]: 0 } },
    ]);
  });

  it("refuses a malformed pool id with invalid_argument naming its index", async () => {
    const error = await rejection(t.admin.getPoolUsage({ poolIds: [newId("pool"), "nope"] }));
    expect([error.code, error.rawMessage]).toEqual([Code.InvalidArgument, "pool_ids[1]: must be a pool_ id"]);
  });
});
