import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { AllocationState, LicenceKind, PoolExhaustedDetailSchema } from "@cls/proto";
import { CAMERA, CONTAINER_MODEL, createAllocationTestContext, EVVR_CAMERA, HARDWARE_MODEL, rejection, type AllocationTestContext } from "./test-context.js";

let t: AllocationTestContext;
beforeAll(async () => {
  t = await createAllocationTestContext();
});
afterAll(async () => {
  await t?.close();
});

describe("RegisterEncoder (SPEC L6, L8.1)", () => {
  it("records a hardware encoder on 9.2 as a pool encoder and takes no licence yet", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));

    const { encoder, legacyLease } = await server.api.registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9.2" });

    expect(encoder).toMatchObject({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9.2.0", highestVersionSeen: "9.2.0", licenceKind: LicenceKind.POOL });
    expect(legacyLease).toBeUndefined();
    expect((await t.usage(server.pool.poolId)).used).toBe(0);
  });

  it("treats the model name case-insensitively, as the catalogue stores it lowercase (SPEC L1a)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    const { encoder } = await server.api.registerEncoder({ encoderId: "enc-1", model: "HD-IP200", firmwareVersion: "9.3" });
    expect(encoder?.model).toBe(HARDWARE_MODEL);
  });

  it("records an EVVR Container on 9.0 as a pool encoder (SPEC L6: containers are v9 from 9.0)", async () => {
    const server = await t.newServer(await t.newPool({ [EVVR_CAMERA]: 1 }));
    const { encoder } = await server.api.registerEncoder({ encoderId: "box-1", model: CONTAINER_MODEL, firmwareVersion: "9.0" });
    expect(encoder?.licenceKind).toBe(LicenceKind.POOL);
  });

  it("grants v8 a perpetual, signed legacy licence that uses no pool capacity and is still listed (SPEC L6)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));

    const { encoder, legacyLease } = await server.api.registerEncoder({ encoderId: "old-1", model: HARDWARE_MODEL, firmwareVersion: "8.4" });

    expect(encoder?.licenceKind).toBe(LicenceKind.LEGACY);
    const lease = t.openLease(legacyLease);
    expect(lease).toMatchObject({ perpetual: true, encoderId: "old-1", serverId: server.caller.serverId, accountId: server.pool.accountId, poolId: "" });
    expect(lease.expiresAt).toBeUndefined();
    expect(lease.renewAfter).toBeUndefined();
    expect((await t.usage(server.pool.poolId)).used).toBe(0);
    const { allocations } = await server.api.listAllocations({ encoderId: "old-1" });
    expect(allocations).toMatchObject([{ kind: LicenceKind.LEGACY, state: AllocationState.ACTIVE, poolId: "", encoderId: "old-1" }]);
    expect(allocations[0]!.leaseExpiresAt).toBeUndefined();
  });

  it("registering the same v8 encoder again keeps one legacy licence", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    const first = await server.api.registerEncoder({ encoderId: "old-1", model: HARDWARE_MODEL, firmwareVersion: "8.4" });
    const second = await server.api.registerEncoder({ encoderId: "old-1", model: HARDWARE_MODEL, firmwareVersion: "8.4" });
    expect(t.openLease(second.legacyLease).serial).toBe(t.openLease(first.legacyLease).serial);
    expect((await server.api.listAllocations({ encoderId: "old-1" })).allocations).toHaveLength(1);
  });

  it("an upgrade from v8 to 9.2 ends the legacy licence; cameras then draw from the pool (SPEC L6)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await server.api.registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "8.4" });

    const { encoder } = await server.api.registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9.2" });

    expect(encoder?.licenceKind).toBe(LicenceKind.POOL);
    const { allocations } = await server.api.listAllocations({ encoderId: "enc-1", includeEnded: true });
    expect(allocations).toMatchObject([{ kind: LicenceKind.LEGACY, state: AllocationState.RELEASED, endReason: "firmware_upgraded" }]);
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
  });

  it.each(["7.9", "6.0"])("refuses v%s with failed_precondition naming the minimum version 8.0, recording nothing (SPEC L6)", async (firmwareVersion) => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    const error = await rejection(server.api.registerEncoder({ encoderId: "ancient", model: HARDWARE_MODEL, firmwareVersion }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("8.0");
    expect(await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).execute()).toHaveLength(0);
  });

  it.each(["9.0", "9.1"])("refuses a hardware encoder on %s: hardware takes part in v9 licensing from 9.2 (SPEC L6)", async (firmwareVersion) => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    const error = await rejection(server.api.registerEncoder({ encoderId: "early", model: HARDWARE_MODEL, firmwareVersion }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("9.2");
  });

  it("refuses v8 on an encoder that was seen on 9.2: downgrade not supported (SPEC L6a)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await server.api.registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9.2" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    const error = await rejection(server.api.registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "8.4" }));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("downgrade not supported");
    const encoder = await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    expect(encoder).toMatchObject({ firmware_version: "9.2.0", licence_kind: "pool" });
    expect((await server.api.listAllocations({ encoderId: "enc-1" })).allocations).toMatchObject([{ cameraId: "cam-1", state: AllocationState.ACTIVE }]);
  });

  it("refuses a model missing from the catalogue with failed_precondition (SPEC L1a)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    const error = await rejection(server.api.registerEncoder({ encoderId: "enc-1", model: "hd-ip999", firmwareVersion: "9.2" }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("hd-ip999");
  });

  it("refuses malformed input with invalid_argument naming the field, recording nothing", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    const cases: Array<[{ encoderId: string; model: string; firmwareVersion: string }, string]> = [
      [{ encoderId: "", model: HARDWARE_MODEL, firmwareVersion: "9.2" }, "encoder_id"],
      [{ encoderId: "has space", model: HARDWARE_MODEL, firmwareVersion: "9.2" }, "encoder_id"],
      [{ encoderId: "x".repeat(129), model: HARDWARE_MODEL, firmwareVersion: "9.2" }, "encoder_id"],
      [{ encoderId: "enc-1", model: "", firmwareVersion: "9.2" }, "model"],
      [{ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "" }, "firmware_version"],
      [{ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "nine" }, "firmware_version"],
      [{ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9".repeat(40) }, "firmware_version"],
    ];
    for (const [request, field] of cases) {
      const error = await rejection(server.api.registerEncoder(request));
      expect(error.code, `${field} ${JSON.stringify(request)}`).toBe(Code.InvalidArgument);
      expect(error.rawMessage.startsWith(`${field}: `)).toBe(true);
    }
    expect(await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).execute()).toHaveLength(0);
  });

  it("refuses a server that is not bound to a pool with failed_precondition, and a call without a caller with unauthenticated", async () => {
    const unbound = t.publicApi({ kind: "server", serverId: newId("srv"), accountId: newId("acc") });
    expect((await rejection(unbound.registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9.2" }))).code).toBe(Code.FailedPrecondition);
    expect((await rejection(t.publicApi(undefined).registerEncoder({ encoderId: "enc-1", model: HARDWARE_MODEL, firmwareVersion: "9.2" }))).code).toBe(
      Code.Unauthenticated,
    );
  });
});

describe("AcquireLicence (SPEC L7, L9)", () => {
  it("grants a signed lease naming account, pool, server, encoder, camera, type, serial and times", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1");

    const { allocation, lease } = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    const now = t.clock.now().getTime();
    const opened = t.openLease(lease);
    expect(opened).toMatchObject({
      accountId: server.pool.accountId,
      poolId: server.pool.poolId,
      serverId: server.caller.serverId,
      encoderId: "enc-1",
      cameraId: "cam-1",
      licenceType: CAMERA,
      perpetual: false,
    });
    expect(opened.serial).toBeGreaterThan(0n);
    expect(timestampDate(opened.issuedAt!).getTime()).toBe(now);
    expect(timestampDate(opened.renewAfter!).getTime()).toBe(now + DAY_MS);
    expect(timestampDate(opened.warnAfter!).getTime()).toBe(now + 7 * DAY_MS);
    expect(timestampDate(opened.expiresAt!).getTime()).toBe(now + 30 * DAY_MS);
    expect(allocation).toMatchObject({ poolId: server.pool.poolId, kind: LicenceKind.POOL, state: AllocationState.ACTIVE, licenceType: CAMERA });
    expect(timestampDate(allocation!.leaseExpiresAt!).getTime()).toBe(now + 30 * DAY_MS);
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
  });

  it("draws the licence type the catalogue maps the model to (SPEC L1a, L7)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1, [EVVR_CAMERA]: 1 }));
    await t.registered(server, "box-1", { model: CONTAINER_MODEL, firmware: "9.0" });

    const { allocation } = await server.api.acquireLicence({ encoderId: "box-1", cameraId: "cam-1" });

    expect(allocation?.licenceType).toBe(EVVR_CAMERA);
    expect((await t.usage(server.pool.poolId, EVVR_CAMERA)).used).toBe(1);
    expect((await t.usage(server.pool.poolId, CAMERA)).used).toBe(0);
  });

  it("acquires until the pool is full, then answers resource_exhausted with total and used in the details (SPEC L7)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 3 }));
    await t.registered(server, "enc-1");
    for (const cameraId of ["cam-1", "cam-2", "cam-3"]) await server.api.acquireLicence({ encoderId: "enc-1", cameraId });

    const error = await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-4" }));

    expect(error.code).toBe(Code.ResourceExhausted);
    expect(ConnectError.from(error).findDetails(PoolExhaustedDetailSchema)).toMatchObject([
      { poolId: server.pool.poolId, licenceType: CAMERA, total: 3, used: 3 },
    ]);
    expect(await t.activeCount(server.pool.poolId)).toBe(3);
    expect((await t.usage(server.pool.poolId)).used).toBe(3);
    const refused = await t.outboxEvents(server.pool.accountId, "acquisition.refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]!.data).toMatchObject({ pool_id: server.pool.poolId, licence_type: CAMERA, total: 3, used: 3, camera_id: "cam-4" });
  });

  it("refuses a type the pool holds none of with resource_exhausted, total 0", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 3 }));
    await t.registered(server, "box-1", { model: CONTAINER_MODEL, firmware: "9.1" });
    const error = await rejection(server.api.acquireLicence({ encoderId: "box-1", cameraId: "cam-1" }));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.findDetails(PoolExhaustedDetailSchema)).toMatchObject([{ total: 0, used: 0 }]);
  });

  it("records 80% and 100% usage crossings as events (SPEC L15)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 5 }));
    await t.registered(server, "enc-1");
    for (let i = 1; i <= 5; i++) await server.api.acquireLicence({ encoderId: "enc-1", cameraId: `cam-${i}` });

    const crossings = await t.outboxEvents(server.pool.accountId, "pool.usage_crossed");

    expect(crossings.map((event) => event.data)).toEqual([
      { pool_id: server.pool.poolId, licence_type: CAMERA, threshold_percent: 80, total: 5, used: 4 },
      { pool_id: server.pool.poolId, licence_type: CAMERA, threshold_percent: 100, total: 5, used: 5 },
    ]);
  });

  it("is idempotent: the same camera again yields the same allocation with a fresh lease and takes nothing (SPEC L7)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1");
    const first = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    t.clock.advance(60_000);

    const second = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    expect(second.allocation?.allocationId).toBe(first.allocation?.allocationId);
    expect(t.openLease(second.lease).serial).toBeGreaterThan(t.openLease(first.lease).serial);
    expect(timestampDate(t.openLease(second.lease).issuedAt!).getTime()).toBe(t.clock.now().getTime());
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
    expect(await t.activeCount(server.pool.poolId)).toBe(1);
    const row = await t.db.selectFrom("allocations").selectAll().where("allocation_id", "=", first.allocation!.allocationId).executeTakeFirstOrThrow();
    expect(BigInt(row.lease_serial)).toBe(t.openLease(second.lease).serial);
  });

  it("a repeat that races a release of the same camera takes a licence afresh, not an error (SPEC L7)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "enc-1");
    const first = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    const firstId = first.allocation!.allocationId;
    let commitRelease!: () => void;
    const releaseMayCommit = new Promise<void>((resolve) => (commitRelease = resolve));
    let releasing!: () => void;
    const releaseHoldsRow = new Promise<void>((resolve) => (releasing = resolve));
    const release = t.db.transaction().execute(async (trx) => {
      await trx.updateTable("allocations").set({ state: "released", end_reason: "released", ended_at: t.clock.now() }).where("allocation_id", "=", firstId).execute();
      await trx.updateTable("pool_usage").set((eb) => ({ used: eb("used", "-", 1) })).where("pool_id", "=", server.pool.poolId).execute();
      releasing();
      await releaseMayCommit;
    });
    await releaseHoldsRow;

    // The repeat reads the still-active licence, then waits on the releasing transaction's row lock.
    const repeat = server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await t.waiters(1);
    commitRelease();
    await release;
    const answer = await repeat;

    expect(answer.allocation?.allocationId).not.toBe(firstId);
    expect(t.openLease(answer.lease).cameraId).toBe("cam-1");
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
    expect(await t.activeCount(server.pool.poolId)).toBe(1);
  });

  it("a repeat for a camera still holding a licence succeeds even when the pool is full (SPEC L7)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "enc-1");
    const first = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    const again = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect(again.allocation?.allocationId).toBe(first.allocation?.allocationId);
  });

  it("never exceeds the count under 30 concurrent acquires on a pool of 5, and used equals the active allocations (SPEC L7a)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 5 }));
    for (const encoderId of ["enc-a", "enc-b", "enc-c"]) await t.registered(server, encoderId);

    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => server.api.acquireLicence({ encoderId: `enc-${"abc"[i % 3]}`, cameraId: `cam-${i}` })),
    );

    const granted = results.filter((r) => r.status === "fulfilled");
    const refused = results.flatMap((r) => (r.status === "rejected" ? [ConnectError.from(r.reason)] : []));
    expect(granted).toHaveLength(5);
    expect(refused).toHaveLength(25);
    expect(refused.every((error) => error.code === Code.ResourceExhausted)).toBe(true);
    expect((await t.usage(server.pool.poolId)).used).toBe(5);
    expect(await t.activeCount(server.pool.poolId)).toBe(5);
  });

  it("concurrent acquires of the same camera take one licence and all answer the same allocation (SPEC L7, L7a)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 5 }));
    await t.registered(server, "enc-1");

    const answers = await Promise.all(Array.from({ length: 10 }, () => server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" })));

    expect(new Set(answers.map((a) => a.allocation?.allocationId)).size).toBe(1);
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
    expect(await t.activeCount(server.pool.poolId)).toBe(1);
  });

  it("gives a v8 encoder's camera a legacy licence outside the pool (SPEC L6)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "old-1", { firmware: "8.2" });

    const { allocation, lease } = await server.api.acquireLicence({ encoderId: "old-1", cameraId: "cam-1" });

    expect(allocation?.kind).toBe(LicenceKind.LEGACY);
    expect(t.openLease(lease).perpetual).toBe(true);
    expect((await t.usage(server.pool.poolId)).used).toBe(0);
  });

  it("refuses an encoder that was never registered with not_found", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    expect((await rejection(server.api.acquireLicence({ encoderId: "ghost", cameraId: "cam-1" }))).code).toBe(Code.NotFound);
  });

  it("refuses malformed ids with invalid_argument naming the field", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "enc-1");
    const noCamera = await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "" }));
    expect([noCamera.code, noCamera.rawMessage]).toEqual([Code.InvalidArgument, "camera_id: is required"]);
    const badCamera = await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam\u0000" }));
    expect(badCamera.code).toBe(Code.InvalidArgument);
    expect(badCamera.rawMessage).toMatch(/^camera_id: /);
    expect((await t.usage(server.pool.poolId)).used).toBe(0);
  });

  it("one server's encoder ids are its own: another server's same encoder id is not found (SPEC L11)", async () => {
    const pool = await t.newPool({ [CAMERA]: 2 });
    const mine = await t.newServer(pool);
    const other = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(mine, "enc-1");
    expect((await rejection(other.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" }))).code).toBe(Code.NotFound);
  });
});

describe("expiry (SPEC L5)", () => {
  it("caps a lease at the pool's expiry and refuses new licences from the expiry instant", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 3 }, { expiresInMs: 10 * DAY_MS }));
    await t.registered(server, "enc-1");

    const { lease } = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect(timestampDate(t.openLease(lease).expiresAt!)).toEqual(server.pool.expiresAt);

    t.clock.set(server.pool.expiresAt);
    const error = await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("expired");
    const renewal = await rejection(server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" }));
    expect(renewal.code).toBe(Code.FailedPrecondition);
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
  });

  it("a moved expiry applies to the very next lease (SPEC L4, L5)", async () => {
    const pool = await t.newPool({ [CAMERA]: 3 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    const sooner = new Date(t.clock.now().getTime() + 2 * DAY_MS);

    await t.admin.applyEntitlement({ poolId: pool.poolId, accountId: pool.accountId, expiresAt: timestampFromDate(sooner), counts: { [CAMERA]: 3 }, version: 2n });
    const { lease } = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    expect(timestampDate(t.openLease(lease).expiresAt!)).toEqual(sooner);
  });
});

describe("ReleaseLicence (SPEC L7, L16)", () => {
  it("frees the licence at once, audits it, and a release of nothing reports released: false", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "enc-1");
    const { allocation } = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    expect(await server.api.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1" })).toMatchObject({ released: true });
    expect(await server.api.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1" })).toMatchObject({ released: false });

    expect((await t.usage(server.pool.poolId)).used).toBe(0);
    const { allocations } = await server.api.listAllocations({ cameraId: "cam-1", includeEnded: true });
    expect(allocations).toMatchObject([{ allocationId: allocation!.allocationId, state: AllocationState.RELEASED, endReason: "released" }]);
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", allocation!.allocationId).execute();
    expect(audit).toMatchObject([{ action: "licence.released", actor: `server:${server.caller.serverId}`, account_id: server.pool.accountId }]);
    // The freed licence is available to another camera straight away.
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
  });

  it("refuses to release for another server with not_found, changing nothing (SPEC L11)", async () => {
    const pool = await t.newPool({ [CAMERA]: 1 });
    const server = await t.newServer(pool);
    const other = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    expect((await rejection(server.api.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1", serverId: other.caller.serverId }))).code).toBe(Code.NotFound);
    expect(await other.api.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1" })).toMatchObject({ released: false });
    expect((await t.usage(pool.poolId)).used).toBe(1);
  });
});

describe("ListAllocations (SPEC L14)", () => {
  it("lists only the caller's account, filtered by server, encoder or camera", async () => {
    const pool = await t.newPool({ [CAMERA]: 5 });
    const a = await t.newServer(pool);
    const b = await t.newServer(pool);
    const stranger = await t.newServer(await t.newPool({ [CAMERA]: 5 }));
    for (const s of [a, b, stranger]) await t.registered(s, "enc-1");
    await a.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await a.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    await b.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await stranger.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    const all = await a.api.listAllocations({});
    expect(all.allocations).toHaveLength(3);
    expect(all.allocations.every((x) => x.accountId === pool.accountId)).toBe(true);
    expect((await a.api.listAllocations({ serverId: b.caller.serverId })).allocations.map((x) => x.cameraId)).toEqual(["cam-1"]);
    expect((await a.api.listAllocations({ cameraId: "cam-2" })).allocations.map((x) => x.serverId)).toEqual([a.caller.serverId]);
    expect((await a.api.listAllocations({ serverId: stranger.caller.serverId })).allocations).toEqual([]);
  });
});
