import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EncoderKind, PoolExhaustedDetailSchema } from "@cls/proto";
import { GrpcStatus } from "@cls/vendor-client";
import { startTestMesh, type TestMesh } from "../support/mesh.js";

/**
 * The core licensing flow through all four services, each on its own ports, over real
 * network calls (vendor tools over @grpc/grpc-js, the EdgeVis Server over Connect/HTTPS),
 * with real Postgres and Redis.
 */
describe("the licensing flow end to end", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("takes an account from purchase to a full pool, a refusal and a notification", async () => {
    // 1. Vendor staff set up the account over gRPC (SPEC L1, L1a).
    const { account } = await t.vendor.pools.createAccount({ name: "Acme Security" });
    await t.vendor.pools.createLicenceType({ licenceType: "edgevis-camera", description: "One camera on a v9 encoder" });
    await t.vendor.pools.putEncoderModel({ model: { model: "hd-ip200", licenceType: "edgevis-camera", kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
    const { pool } = await t.vendor.pools.createPool({
      accountId: account!.accountId,
      name: "2026 purchase",
      expiresAt: timestampFromDate(new Date(t.clock.now().getTime() + 365 * 24 * 3600 * 1000)),
      counts: { "edgevis-camera": 2 },
    });
    expect(pool!.entitlements).toEqual([expect.objectContaining({ licenceType: "edgevis-camera", total: 2 })]);

    // 2. An enrollment code binds a new server, with its own key, to the pool (SPEC L11, L3).
    const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId: account!.accountId, poolId: pool!.poolId });
    const server = t.edgeVisServer();
    const identity = await server.enroll(enrollmentCode, "head office");
    expect(identity).toMatchObject({ accountId: account!.accountId, poolId: pool!.poolId });
    const reuse = await t.edgeVisServer().enroll(enrollmentCode, "intruder").catch((error: unknown) => error);
    expect(ConnectError.from(reuse).code).toBe(Code.AlreadyExists);

    // 3. A v9 encoder's cameras each get a lease signed by CLS's published key (SPEC L7, L9).
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.1");
    const first = await server.addCamera("enc-1", "cam-1");
    const second = await server.addCamera("enc-1", "cam-2");
    for (const [granted, camera] of [[first, "cam-1"], [second, "cam-2"]] as const) {
      expect(granted.lease.lease).toMatchObject({
        accountId: account!.accountId,
        poolId: pool!.poolId,
        serverId: identity.serverId,
        encoderId: "enc-1",
        cameraId: camera,
        licenceType: "edgevis-camera",
      });
    }
    const published = await server.allocation.getLeaseKey({});
    expect(published.keyId).toBe(first.lease.signed.keyId);

    // 4. The pool is full: the next camera is refused with total and used (SPEC L7).
    const refusal = ConnectError.from(await server.addCamera("enc-1", "cam-3").catch((error: unknown) => error));
    expect(refusal.code).toBe(Code.ResourceExhausted);
    expect(refusal.findDetails(PoolExhaustedDetailSchema)).toEqual([expect.objectContaining({ poolId: pool!.poolId, total: 2, used: 2 })]);
    // Removing a camera frees its licence at once; the next add succeeds.
    expect(await server.removeCamera("enc-1", "cam-1")).toBe(true);
    const third = await server.addCamera("enc-1", "cam-3");
    expect(third.lease.lease.cameraId).toBe("cam-3");

    // 5. Adding the same camera twice takes one licence, not two (SPEC L7).
    const again = await server.addCamera("enc-1", "cam-3");
    expect(again.allocation!.allocationId).toBe(third.allocation!.allocationId);
    const { pools } = await server.pools.listPools({});
    expect(pools[0]!.entitlements).toEqual([expect.objectContaining({ total: 2, used: 2, free: 0 })]);

    // 6. The refusal reached the notification service through the outbox (SPEC L15).
    await t.mesh.modules.allocation.context.outbox.flush();
    const { notifications } = await server.notifications.listNotifications({ type: "acquisition.refused" });
    expect(notifications).toHaveLength(1);
    expect(JSON.parse(notifications[0]!.dataJson)).toMatchObject({ pool_id: pool!.poolId, total: 2, used: 2, camera_id: "cam-3" });
    const vendorView = await t.vendor.notifications.listAccountNotifications({ accountId: account!.accountId, type: "acquisition.refused" });
    expect(vendorView.notifications.map((n) => n.eventId)).toEqual(notifications.map((n) => n.eventId));
  });

  it("answers vendor tools with gRPC status codes", async () => {
    const error = await t.vendor.pools.getPool({ poolId: "not-a-pool" }).catch((e: { code: number }) => e);
    expect((error as { code: number }).code).toBe(GrpcStatus.INVALID_ARGUMENT);
  });
});
