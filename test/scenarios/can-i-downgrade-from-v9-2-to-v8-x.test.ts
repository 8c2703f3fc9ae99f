import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LicenceKind } from "@cls/proto";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, DAY, enrollServer, poolAsListed, refusal } from "./support.js";

/** FAQ: "No, once a hardware product has v9.2 installed, it can't be downgraded." */
describe("Can I downgrade from v9.2 to v8.X?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function encoderOnV92() {
    const { accountId, poolId } = await seedAccount(t, { count: 3 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2.0");
    const cam1 = await server.addCamera("enc-1", "cam-1");
    const cam2 = await server.addCamera("enc-1", "cam-2");
    const licences = async () =>
      (await server.allocation.listAllocations({ encoderId: "enc-1", includeEnded: true })).allocations
        .map((a) => ({ id: a.allocationId, camera: a.cameraId, kind: a.kind, state: a.state, poolId: a.poolId }))
        .sort((a, b) => a.camera.localeCompare(b.camera));
    return { poolId, server, cam1, cam2, licences };
  }

  it("an encoder that has run v9.2 and registers again reporting v8.x is refused, its licences unchanged", async () => {
    const { poolId, server, licences } = await encoderOnV92();
    const before = await licences();

    // SPEC L6a: failed_precondition, "downgrade not supported".
    const refused = await refusal(server.registerEncoder("enc-1", "HD-IP200", "8.4.1"));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.rawMessage).toContain("downgrade not supported");

    // Nothing changed: no legacy licence granted, the pool licences still held.
    expect(await licences()).toEqual(before);
    expect(before.every((l) => l.kind === LicenceKind.POOL && l.poolId === poolId)).toBe(true);
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 3, used: 2, free: 1 });
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("licensed");
  });

  it("the daily check of an encoder now reporting v8.x is refused the same way, its licences unchanged", async () => {
    const { poolId, server, licences, cam1 } = await encoderOnV92();
    const before = await licences();
    t.clock.advance(DAY);

    const [outcome] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "8.9" }]);
    expect(outcome!.errorCode).toBe("failed_precondition");
    expect(outcome!.errorMessage).toContain("downgrade not supported");
    expect(outcome!.revocations).toEqual([]);
    expect(outcome!.leases).toEqual([]);
    // The single-encoder check answers with the error itself.
    const single = await refusal(server.allocation.checkEncoder({ encoderId: "enc-1", firmwareVersion: "8.9" }));
    expect(single.code).toBe(Code.FailedPrecondition);
    expect(single.rawMessage).toContain("downgrade not supported");

    expect(await licences()).toEqual(before);
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 3, used: 2, free: 1 });
    expect(server.leases.lease("enc-1", "cam-1")!.serial).toBe(cam1.lease.lease.serial);

    // Back on v9.2 the encoder is checked and renewed as before.
    const [again] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2.0" }]);
    expect(again!.errorCode).toBe("");
    expect(again!.leases.map((l) => l.lease.cameraId).sort()).toEqual(["cam-1", "cam-2"]);
  });

  it("it stays refused: having once run v9.2 is remembered after later v9 updates", async () => {
    const { server } = await encoderOnV92();
    await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.3" }]);
    await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2.1" }]);
    const [outcome] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "8.0" }]);
    expect(outcome!.errorCode).toBe("failed_precondition");
    expect(outcome!.errorMessage).toContain("downgrade not supported");
  });

  it("a v8 encoder that was never on v9.2 is not a downgrade", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    const { legacyLease } = await server.registerEncoder("enc-8", "HD-IP200", "8.2");
    expect(legacyLease!.lease.perpetual).toBe(true);
    const [outcome] = await server.dailyCheck([{ encoderId: "enc-8", firmwareVersion: "8.3" }]);
    expect(outcome!.errorCode).toBe("");
  });
});
