import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, DAY, drainOutboxes, newServerClient, poolAsListed, refusal } from "./support.js";

/** A local port nothing listens on: CLS "out of reach" from the server's side. */
async function closedPortUrl(): Promise<string> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `https://localhost:${port}`;
}

/**
 * FAQ: "You won't be able to provision new servers or encoders if your internet connection
 * isn't working."
 */
describe("Can I provision new servers or encoders without the connection?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a new server cannot enroll while CLS is out of reach, and the attempt is not queued", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId, poolId });

    // SPEC L10: refused at once with `unavailable`.
    const offline = newServerClient(t, { baseUrl: await closedPortUrl() });
    const refused = await refusal(offline.enroll(enrollmentCode, "new site"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(offline.identity).toBeUndefined();

    // Nothing reached CLS, then or later: no server on the account, the code still unused.
    t.clock.advance(60_000);
    await drainOutboxes(t);
    expect((await t.vendor.identity.listServers({ accountId })).servers).toEqual([]);
    // Once the connection is back the same code enrolls the server.
    const online = newServerClient(t);
    const identity = await online.enroll(enrollmentCode, "new site");
    expect(identity.accountId).toBe(accountId);
    expect((await t.vendor.identity.listServers({ accountId })).servers.map((s) => s.serverId)).toEqual([identity.serverId]);
  });

  it("a new encoder or camera cannot be provisioned while CLS is out of reach, and nothing is queued for later", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId, poolId });
    const online = newServerClient(t);
    const identity = await online.enroll(enrollmentCode, "site");
    await online.registerEncoder("enc-1", "HD-IP200", "9.2");

    // The same server with its connection down.
    const offline = newServerClient(t, { baseUrl: await closedPortUrl(), identity });
    for (const attempt of [
      () => offline.registerEncoder("enc-2", "HD-IP200", "9.2"),
      () => offline.registerEncoder("enc-legacy", "HD-IP200", "8.3"),
      () => offline.addCamera("enc-1", "cam-1"),
    ]) {
      expect((await refusal(attempt())).code).toBe(Code.Unavailable);
    }
    expect(offline.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("unlicensed");

    // A day later with the connection back, CLS holds nothing from the offline attempts.
    t.clock.advance(DAY);
    await t.mesh.modules.allocation.runJobs!();
    await drainOutboxes(t);
    const { allocations } = await online.allocation.listAllocations({ includeEnded: true });
    expect(allocations).toEqual([]);
    expect((await poolAsListed(online, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 0, free: 2 });
    // The encoder that never got through is unknown to CLS: its camera is refused until it registers.
    expect((await refusal(online.addCamera("enc-2", "cam-1"))).code).toBe(Code.NotFound);
    const [check] = await online.dailyCheck([{ encoderId: "enc-2", firmwareVersion: "9.2" }]);
    expect(check!.errorCode).toBe("not_found");
  });
});
