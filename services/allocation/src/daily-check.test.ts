import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAY_MS } from "@cls/clock";
import { AllocationState } from "@cls/proto";
import { CAMERA, createAllocationTestContext, rejection, type AllocationTestContext, type TestPool } from "./test-context.js";

let t: AllocationTestContext;
beforeAll(async () => {
  t = await createAllocationTestContext();
});
afterAll(async () => {
  await t?.close();
});

async function lowerCount(pool: TestPool, count: number, version: bigint): Promise<void> {
  const { applied } = await t.admin.applyEntitlement({ ...pool, expiresAt: timestampFromDate(pool.expiresAt), counts: { [CAMERA]: count }, version });
  expect(applied).toBe(true);
}

describe("CheckEncoder: renewal (SPEC L8.3, L9)", () => {
  it("returns a fresh lease for every licence the encoder holds, with new serials and times", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 3 }));
    await t.registered(server, "enc-1");
    const first = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });
    t.clock.advance(DAY_MS);

    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });

    expect(check.revocations).toEqual([]);
    const leases = check.leases.map((lease) => t.openLease(lease));
    expect(leases.map((lease) => lease.cameraId).sort()).toEqual(["cam-1", "cam-2"]);
    const now = t.clock.now().getTime();
    for (const lease of leases) {
      expect(timestampDate(lease.issuedAt!).getTime()).toBe(now);
      expect(timestampDate(lease.expiresAt!).getTime()).toBe(now + 30 * DAY_MS);
    }
    expect(leases.find((lease) => lease.cameraId === "cam-1")!.serial).toBeGreaterThan(t.openLease(first.lease).serial);
    const row = await t.db.selectFrom("allocations").selectAll().where("allocation_id", "=", first.allocation!.allocationId).executeTakeFirstOrThrow();
    expect(row.lease_expires_at!.getTime()).toBe(now + 30 * DAY_MS);
    expect((await t.usage(server.pool.poolId)).used).toBe(2);
  });

  it("renews a v8 encoder's legacy licence as perpetual (SPEC L6)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "old-1", { firmware: "8.4" });
    const check = await server.api.checkEncoder({ encoderId: "old-1", firmwareVersion: "8.4" });
    expect(check.leases.map((lease) => t.openLease(lease))).toMatchObject([{ perpetual: true, encoderId: "old-1" }]);
    expect(t.openLease(check.leases[0]).expiresAt).toBeUndefined();
  });

  it("refuses an unregistered encoder with not_found and malformed firmware with invalid_argument", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    expect((await rejection(server.api.checkEncoder({ encoderId: "ghost", firmwareVersion: "9.2" }))).code).toBe(Code.NotFound);
    await t.registered(server, "enc-1");
    const error = await rejection(server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "latest" }));
    expect([error.code, error.rawMessage.startsWith("firmware_version: ")]).toEqual([Code.InvalidArgument, true]);
  });
});

describe("CheckEncoder: a lowered count (SPEC L4)", () => {
  it("keeps licences working until the check, then revokes the newest above the new count, pool-wide", async () => {
    const pool = await t.newPool({ [CAMERA]: 3 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-old");
    await t.registered(server, "enc-new");
    await server.api.acquireLicence({ encoderId: "enc-old", cameraId: "cam-a" });
    t.clock.advance(1_000);
    await server.api.acquireLicence({ encoderId: "enc-new", cameraId: "cam-b" });
    t.clock.advance(1_000);
    await server.api.acquireLicence({ encoderId: "enc-new", cameraId: "cam-c" });

    await lowerCount(pool, 1, 2n);

    // The very next request sees the change: no new licence ...
    expect((await rejection(server.api.acquireLicence({ encoderId: "enc-old", cameraId: "cam-d" }))).code).toBe(Code.ResourceExhausted);
    // ... but licences already held keep working until their encoder's check.
    await server.api.acquireLicence({ encoderId: "enc-new", cameraId: "cam-c" });
    expect(await t.activeCount(pool.poolId)).toBe(3);
    expect(await t.usage(pool.poolId)).toMatchObject({ capacity: 1, used: 3 });

    // The oldest licence is within the new count: its encoder's check revokes nothing.
    const oldCheck = await server.api.checkEncoder({ encoderId: "enc-old", firmwareVersion: "9.2" });
    expect(oldCheck.revocations).toEqual([]);
    expect(oldCheck.leases.map((lease) => t.openLease(lease).cameraId)).toEqual(["cam-a"]);
    expect((await t.usage(pool.poolId)).used).toBe(3);

    const newCheck = await server.api.checkEncoder({ encoderId: "enc-new", firmwareVersion: "9.2" });
    expect(newCheck.leases).toEqual([]);
    expect(newCheck.revocations.map((r) => [r.cameraId, r.reason]).sort()).toEqual([
      ["cam-b", "entitlement_lowered"],
      ["cam-c", "entitlement_lowered"],
    ]);
    expect(await t.usage(pool.poolId)).toMatchObject({ capacity: 1, used: 1 });
    expect(await t.activeCount(pool.poolId)).toBe(1);
    const revoked = await t.outboxEvents(pool.accountId, "licence.revoked");
    expect(revoked.map((event) => [event.data.camera_id, event.data.reason]).sort()).toEqual([
      ["cam-b", "entitlement_lowered"],
      ["cam-c", "entitlement_lowered"],
    ]);
    const { allocations } = await server.api.listAllocations({ encoderId: "enc-new", includeEnded: true });
    expect(allocations.every((a) => a.state === AllocationState.REVOKED && a.endReason === "entitlement_lowered")).toBe(true);
  });

  it("revokes only as many as are above the new count, newest first", async () => {
    const pool = await t.newPool({ [CAMERA]: 4 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    for (const cameraId of ["cam-1", "cam-2", "cam-3", "cam-4"]) {
      await server.api.acquireLicence({ encoderId: "enc-1", cameraId });
      t.clock.advance(1_000);
    }

    await lowerCount(pool, 3, 2n);
    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });

    expect(check.revocations).toMatchObject([{ cameraId: "cam-4", reason: "entitlement_lowered" }]);
    expect(check.leases.map((lease) => t.openLease(lease).cameraId).sort()).toEqual(["cam-1", "cam-2", "cam-3"]);
    expect((await t.usage(pool.poolId)).used).toBe(3);
  });

  it("revokes nothing when the count is raised back before the check (SPEC L4: nothing else changes)", async () => {
    const pool = await t.newPool({ [CAMERA]: 2 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" });

    await lowerCount(pool, 1, 2n);
    await lowerCount(pool, 2, 3n);
    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });

    expect(check.revocations).toEqual([]);
    expect(check.leases).toHaveLength(2);
    expect((await t.usage(pool.poolId)).used).toBe(2);
  });
});

describe("CheckEncoder: an expired pool (SPEC L5)", () => {
  it("revokes every licence with reason pool_expired and frees the capacity", async () => {
    const pool = await t.newPool({ [CAMERA]: 2 }, { expiresInMs: 10 * DAY_MS });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    const { lease } = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect(timestampDate(t.openLease(lease).expiresAt!)).toEqual(pool.expiresAt);

    t.clock.set(new Date(pool.expiresAt.getTime() + DAY_MS));
    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });

    expect(check.leases).toEqual([]);
    expect(check.revocations).toMatchObject([{ encoderId: "enc-1", cameraId: "cam-1", reason: "pool_expired" }]);
    expect((await t.usage(pool.poolId)).used).toBe(0);
    expect((await t.outboxEvents(pool.accountId, "licence.revoked")).map((e) => e.data.reason)).toEqual(["pool_expired"]);
  });

  it("renews a lease shortly before expiry only up to the pool's expiry (SPEC L5: no lease runs past its pool)", async () => {
    const pool = await t.newPool({ [CAMERA]: 2 }, { expiresInMs: 40 * DAY_MS });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });

    t.clock.advance(20 * DAY_MS);
    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });

    expect(timestampDate(t.openLease(check.leases[0]).expiresAt!)).toEqual(pool.expiresAt);
  });
});

describe("CheckEncoder: firmware changes (SPEC L6, L6a)", () => {
  it("refuses a downgrade from 9.2 to 8.x with failed_precondition and leaves the licences unchanged", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1");
    const { allocation } = await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    const before = await t.db.selectFrom("allocations").selectAll().where("allocation_id", "=", allocation!.allocationId).executeTakeFirstOrThrow();

    const error = await rejection(server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "8.4" }));

    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toContain("downgrade not supported");
    const after = await t.db.selectFrom("allocations").selectAll().where("allocation_id", "=", allocation!.allocationId).executeTakeFirstOrThrow();
    expect(after).toEqual(before);
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
    const encoder = await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    expect(encoder).toMatchObject({ firmware_version: "9.2.0", highest_version_seen: "9.2.0", licence_kind: "pool" });
  });

  it("an upgrade of a legacy encoder seen at the check ends its legacy licence (reason firmware_upgraded)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1", { firmware: "8.4" });

    const check = await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });

    expect(check.revocations).toMatchObject([{ encoderId: "enc-1", reason: "firmware_upgraded" }]);
    const encoder = await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    expect(encoder).toMatchObject({ firmware_version: "9.2.0", highest_version_seen: "9.2.0", licence_kind: "pool" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    expect((await t.usage(server.pool.poolId)).used).toBe(1);
  });

  it("records a higher version seen at the check, so a later downgrade is refused", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 2 }));
    await t.registered(server, "enc-1", { firmware: "9.2" });
    await server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.4.1" });
    const encoder = await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    expect(encoder).toMatchObject({ firmware_version: "9.4.1", highest_version_seen: "9.4.1" });
    expect((await rejection(server.api.checkEncoder({ encoderId: "enc-1", firmwareVersion: "8.0" }))).code).toBe(Code.FailedPrecondition);
  });
});

describe("CheckEncoders: the batch form (SPEC L8.3)", () => {
  it("answers per encoder, in order: an unknown encoder's not_found or a downgrade does not fail the others", async () => {
    const pool = await t.newPool({ [CAMERA]: 5 });
    const server = await t.newServer(pool);
    await t.registered(server, "enc-1");
    await t.registered(server, "enc-2");
    await t.registered(server, "old-1", { firmware: "8.1" });
    await server.api.acquireLicence({ encoderId: "enc-1", cameraId: "cam-1" });
    await server.api.acquireLicence({ encoderId: "enc-2", cameraId: "cam-1" });
    const enc2Before = await t.db.selectFrom("allocations").selectAll().where("server_id", "=", server.caller.serverId).where("encoder_id", "=", "enc-2").execute();

    const { outcomes } = await server.api.checkEncoders({
      encoders: [
        { encoderId: "enc-1", firmwareVersion: "9.2" },
        { encoderId: "ghost", firmwareVersion: "9.2" },
        { encoderId: "enc-2", firmwareVersion: "8.3" },
        { encoderId: "old-1", firmwareVersion: "8.1" },
      ],
    });

    expect(outcomes.map((o) => [o.encoderId, o.errorCode])).toEqual([
      ["enc-1", ""],
      ["ghost", "not_found"],
      ["enc-2", "failed_precondition"],
      ["old-1", ""],
    ]);
    expect(outcomes[2]!.errorMessage).toContain("downgrade not supported");
    expect(outcomes[0]!.result!.leases.map((lease) => t.openLease(lease).cameraId)).toEqual(["cam-1"]);
    expect(outcomes[3]!.result!.leases.map((lease) => t.openLease(lease).perpetual)).toEqual([true]);
    expect(outcomes[1]!.result).toBeUndefined();
    const enc2After = await t.db.selectFrom("allocations").selectAll().where("server_id", "=", server.caller.serverId).where("encoder_id", "=", "enc-2").execute();
    expect(enc2After).toEqual(enc2Before);
    expect((await t.usage(pool.poolId)).used).toBe(2);
  });

  it("refuses an empty batch and a malformed entry with invalid_argument naming the field", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    const empty = await rejection(server.api.checkEncoders({ encoders: [] }));
    expect([empty.code, empty.rawMessage.startsWith("encoders: ")]).toEqual([Code.InvalidArgument, true]);
    const bad = await rejection(server.api.checkEncoders({ encoders: [{ encoderId: "enc-1", firmwareVersion: "9.2" }, { encoderId: "", firmwareVersion: "9.2" }] }));
    expect([bad.code, bad.rawMessage]).toEqual([Code.InvalidArgument, "encoders[1].encoder_id: is required"]);
  });

  it("refuses a batch naming one encoder twice, so no licence gets two leases in one answer (SPEC L9)", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "enc-1");
    const twice = await rejection(
      server.api.checkEncoders({ encoders: [{ encoderId: "enc-1", firmwareVersion: "9.2" }, { encoderId: "enc-1", firmwareVersion: "9.2" }] }),
    );
    expect([twice.code, twice.rawMessage]).toEqual([Code.InvalidArgument, "encoders[1].encoder_id: names an encoder already in this batch"]);
  });

  it("records each encoder's check time and the server's", async () => {
    const server = await t.newServer(await t.newPool({ [CAMERA]: 1 }));
    await t.registered(server, "enc-1");
    t.clock.advance(DAY_MS);
    await server.api.checkEncoders({ encoders: [{ encoderId: "enc-1", firmwareVersion: "9.2" }] });
    const encoder = await t.db.selectFrom("encoders").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    const row = await t.db.selectFrom("servers").selectAll().where("server_id", "=", server.caller.serverId).executeTakeFirstOrThrow();
    expect(encoder.last_check_at).toEqual(t.clock.now());
    expect(row.last_check_at).toEqual(t.clock.now());
    expect(encoder.licence_kind).toBe("pool");
  });
});
