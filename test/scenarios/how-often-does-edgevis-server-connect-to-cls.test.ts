import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { DAY, enrollServer, licensingCalls, ms, newServerClient, poolAsListed, startCallRecorder } from "./support.js";

/**
 * FAQ: "1. When a new encoder instance is added to the server. 2. When a new camera is added
 * to an existing v9 encoder. 3. A daily check for each encoder to verify that its licence is
 * up to date."
 */
describe("How often does EdgeVis Server connect to CLS?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("only when an encoder is added, when a camera is added, and for the daily check", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 5 });
    const enrolled = await enrollServer(t, accountId, poolId);
    const recorder = await startCallRecorder(t);
    try {
      // The same server, now reaching CLS through a front that records every call it makes.
      const server = newServerClient(t, { baseUrl: recorder.url, identity: enrolled.identity! });

      // SPEC L8.1: a new encoder instance is registered.
      await server.registerEncoder("enc-1", "HD-IP200", "9.2");
      expect(licensingCalls(recorder.calls)).toEqual(["RegisterEncoder"]);
      // SPEC L8.2: a new camera acquires.
      await server.addCamera("enc-1", "cam-1");
      await server.addCamera("enc-1", "cam-2");
      expect(licensingCalls(recorder.calls)).toEqual(["RegisterEncoder", "AcquireLicence", "AcquireLicence"]);

      // Between those moments the server says nothing: a day passes without a single call.
      const before = recorder.calls.length;
      t.clock.advance(DAY + 60_000);
      expect(recorder.calls.length).toBe(before);

      // SPEC L8.3: the daily check, one request for the encoders.
      expect(server.leases.dueForRenewal(t.clock.now()).map((l) => l.cameraId).sort()).toEqual(["cam-1", "cam-2"]);
      await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
      expect(licensingCalls(recorder.calls)).toEqual(["RegisterEncoder", "AcquireLicence", "AcquireLicence", "CheckEncoders"]);
      // The rest is signing in with the server's own key before a call (SPEC L11).
      expect(recorder.calls.every((path) => /\/cls\.(allocation|server_identity)\.v1\./.test(path))).toBe(true);
    } finally {
      await recorder.close();
    }
  });

  it("the daily check verifies and renews each licence: a new serial and a new expiry 30 days on", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 5 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    const granted = await server.addCamera("enc-1", "cam-1");
    const issued = t.clock.now().getTime();
    // SPEC L9: the lease's times: renew after a day, warn after 7, expire after about 30.
    expect(ms(granted.lease.lease.issuedAt)).toBe(issued);
    expect(ms(granted.lease.lease.renewAfter)).toBe(issued + DAY);
    expect(ms(granted.lease.lease.warnAfter)).toBe(issued + 7 * DAY);
    expect(ms(granted.lease.lease.expiresAt)).toBe(issued + 30 * DAY);
    expect(server.leases.dueForRenewal(t.clock.now())).toEqual([]);

    t.clock.advance(DAY);
    const now = t.clock.now().getTime();
    expect(server.leases.dueForRenewal(t.clock.now()).map((l) => l.cameraId)).toEqual(["cam-1"]);
    const [outcome] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(outcome!.errorCode).toBe("");
    expect(outcome!.revocations).toEqual([]);
    const [renewed] = outcome!.leases;
    expect(renewed!.lease).toMatchObject({ accountId, poolId, encoderId: "enc-1", cameraId: "cam-1", licenceType: "edgevis-camera" });
    expect(renewed!.lease.serial).toBeGreaterThan(granted.lease.lease.serial);
    expect(ms(renewed!.lease.issuedAt)).toBe(now);
    expect(ms(renewed!.lease.renewAfter)).toBe(now + DAY);
    expect(ms(renewed!.lease.warnAfter)).toBe(now + 7 * DAY);
    expect(ms(renewed!.lease.expiresAt)).toBe(now + 30 * DAY);
    // The server now holds the renewed lease; renewing took no extra licence.
    expect(server.leases.lease("enc-1", "cam-1")!.serial).toBe(renewed!.lease.serial);
    expect(server.leases.dueForRenewal(t.clock.now())).toEqual([]);
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 5, used: 1, free: 4 });
    const { allocations } = await server.allocation.listAllocations({ cameraId: "cam-1" });
    expect(allocations.map((a) => a.allocationId)).toEqual([granted.allocation!.allocationId]);
    expect(ms(allocations[0]!.leaseExpiresAt)).toBe(now + 30 * DAY);

    // The single-encoder form of the check does the same.
    t.clock.advance(DAY);
    const single = await server.allocation.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" });
    const lease = server.verify(single.leases[0]!).lease;
    expect(lease.serial).toBeGreaterThan(renewed!.lease.serial);
    expect(ms(lease.expiresAt)).toBe(t.clock.now().getTime() + 30 * DAY);
  });

  it("a batch daily check covers many encoders in one request, each with its own outcome", async () => {
    const ENCODERS = 150;
    const { accountId, poolId } = await seedAccount(t, { count: ENCODERS });
    const server = await enrollServer(t, accountId, poolId);
    // Set-up while the clock stands still: the library may keep its access token between calls.
    const setUp = newServerClient(t, { identity: server.identity!, cacheToken: true });
    await setUp.registerEncoder("enc-old", "HD-IP200", "8.1"); // signs in once; the rest reuse the token
    for (let first = 0; first < ENCODERS; first += 25) {
      await Promise.all(
        Array.from({ length: Math.min(25, ENCODERS - first) }, async (_, j) => {
          await setUp.registerEncoder(`enc-${first + j}`, "HD-IP200", "9.2");
          await setUp.addCamera(`enc-${first + j}`, "cam-1");
        }),
      );
    }
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: ENCODERS, used: ENCODERS, free: 0 });

    t.clock.advance(DAY);
    const recorder = await startCallRecorder(t);
    try {
      const viaRecorder = newServerClient(t, { baseUrl: recorder.url, identity: server.identity! });
      const requests = Array.from({ length: ENCODERS }, (_, i) => ({ encoderId: `enc-${i}`, firmwareVersion: "9.2" }));
      // An unknown encoder and one now reporting v7 firmware do not fail the others.
      const outcomes = await viaRecorder.dailyCheck([
        ...requests,
        { encoderId: "enc-never-registered", firmwareVersion: "9.2" },
        { encoderId: "enc-old", firmwareVersion: "7.1" },
      ]);
      // SPEC L8.3: the whole batch is one CheckEncoders request.
      expect(licensingCalls(recorder.calls)).toEqual(["CheckEncoders"]);

      expect(outcomes).toHaveLength(ENCODERS + 2);
      const renewed = outcomes.slice(0, ENCODERS);
      expect(renewed.map((o) => o.encoderId)).toEqual(requests.map((r) => r.encoderId));
      for (const outcome of renewed) {
        expect(outcome.errorCode).toBe("");
        expect(outcome.leases.map((l) => l.lease.encoderId)).toEqual([outcome.encoderId]);
        expect(ms(outcome.leases[0]!.lease.expiresAt)).toBe(t.clock.now().getTime() + 30 * DAY);
      }
      expect(outcomes[ENCODERS]).toMatchObject({ encoderId: "enc-never-registered", errorCode: "not_found" });
      expect(outcomes[ENCODERS + 1]).toMatchObject({ encoderId: "enc-old", errorCode: "failed_precondition" });
      expect(outcomes[ENCODERS + 1]!.errorMessage).toContain("8.0");
    } finally {
      await recorder.close();
    }
  });
});
