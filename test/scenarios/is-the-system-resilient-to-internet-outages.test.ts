import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AllocationState } from "@cls/proto";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { DAY, enrollServer, ms, notificationsOf, poolAsListed } from "./support.js";

const MINUTE = 60_000;

/**
 * FAQ: "Yes. Any encoders that are already set up will continue to operate for roughly a
 * month without issue. However, after a week, your server and encoder web interfaces will
 * warn you that your system has been unable to connect to CLS, and that you need to take
 * steps to resolve this issue."
 *
 * The outage is simply the server making no calls while the shared clock moves on: what the
 * server does is judged by its own LeaseBook (SPEC L9, client side), what CLS does by its
 * scheduled jobs (SPEC L9a, L15).
 */
describe("Is the system resilient to internet outages?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function serverWithTwoCameras() {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    await server.addCamera("enc-1", "cam-1");
    await server.addCamera("enc-1", "cam-2");
    return { accountId, poolId, server, start: t.clock.now().getTime() };
  }

  it("after a week without CLS the server warns but its cameras keep running; contact within the month renews and clears the warning", async () => {
    const { accountId, poolId, server, start } = await serverWithTwoCameras();
    const standings = () => ["cam-1", "cam-2"].map((camera) => server.leases.standing("enc-1", camera, t.clock.now()));

    // Six days and 23 hours without contact: nothing to report yet.
    t.clock.set(new Date(start + 7 * DAY - MINUTE));
    expect(standings()).toEqual(["licensed", "licensed"]);
    expect(server.leases.shouldWarn(t.clock.now())).toBe(false);

    // SPEC L9: a week without contact: the server warns, and the cameras are still running.
    t.clock.set(new Date(start + 7 * DAY + MINUTE));
    expect(standings()).toEqual(["warning", "warning"]);
    expect(server.leases.shouldWarn(t.clock.now())).toBe(true);

    // SPEC L15: CLS tells the customer the server has been silent for more than 7 days — once.
    await t.mesh.modules.allocation.runJobs!();
    await t.mesh.modules.allocation.runJobs!();
    const silent = await notificationsOf(t, accountId, "server.silent");
    expect(silent.map((n) => n.data)).toEqual([expect.objectContaining({ server_id: server.identity!.serverId })]);
    // Its licences are still held for it: nothing is reclaimed while the leases run.
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 2, free: 0 });

    // Three weeks in, the connection is back: the daily check renews and the warning clears.
    t.clock.set(new Date(start + 21 * DAY));
    expect(standings()).toEqual(["warning", "warning"]);
    const [check] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(check!.errorCode).toBe("");
    expect(check!.revocations).toEqual([]);
    expect(check!.leases.map((l) => ms(l.lease.expiresAt))).toEqual([start + 51 * DAY, start + 51 * DAY]);
    expect(standings()).toEqual(["licensed", "licensed"]);
    expect(server.leases.shouldWarn(t.clock.now())).toBe(false);

    // Past the first lease's 30 days nothing is reclaimed: the renewed leases stand.
    t.clock.set(new Date(start + 31 * DAY));
    await t.mesh.modules.allocation.runJobs!();
    expect(standings()).toEqual(["warning", "warning"]); // 10 days since the last contact
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 2, free: 0 });
    expect(await notificationsOf(t, accountId, "licence.reclaimed")).toEqual([]);
  });

  it("after about a month without CLS the leases lapse, and CLS reclaims the licences into the pool", async () => {
    const { accountId, poolId, server, start } = await serverWithTwoCameras();

    // Up to the 30th day the cameras still run (in warning).
    t.clock.set(new Date(start + 30 * DAY - MINUTE));
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("warning");
    await t.mesh.modules.allocation.runJobs!();
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 2, free: 0 });
    expect(await notificationsOf(t, accountId, "licence.reclaimed")).toEqual([]);

    // SPEC L9: at about 30 days the leases lapse on the server.
    t.clock.set(new Date(start + 30 * DAY + MINUTE));
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("lapsed");
    expect(server.leases.standing("enc-1", "cam-2", t.clock.now())).toBe("lapsed");

    // SPEC L9a: CLS reclaims the allocations whose lease expired without a check; the capacity returns.
    await t.mesh.modules.allocation.runJobs!();
    expect((await poolAsListed(server, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 0, free: 2 });
    const reclaimed = await notificationsOf(t, accountId, "licence.reclaimed");
    expect(reclaimed.map((n) => `${n.data.encoder_id}/${n.data.camera_id}`).sort()).toEqual(["enc-1/cam-1", "enc-1/cam-2"]);
    // Reclaiming again finds nothing more to do.
    await t.mesh.modules.allocation.runJobs!();
    expect(await notificationsOf(t, accountId, "licence.reclaimed")).toHaveLength(2);
    const { allocations } = await server.allocation.listAllocations({ includeEnded: true });
    expect(allocations.map((a) => a.state)).toEqual([AllocationState.RECLAIMED, AllocationState.RECLAIMED]);
    // The server was reported silent once along the way.
    expect(await notificationsOf(t, accountId, "server.silent")).toHaveLength(1);

    // When the server comes back, its daily check renews nothing that was reclaimed...
    const [check] = await server.dailyCheck([{ encoderId: "enc-1", firmwareVersion: "9.2" }]);
    expect(check!.errorCode).toBe("");
    expect(check!.leases).toEqual([]);
    // ...and its cameras acquire again from the freed capacity.
    const again = await server.addCamera("enc-1", "cam-1");
    expect(again.lease.lease.poolId).toBe(poolId);
    expect(server.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("licensed");
  });

  it("a dead server cannot hold licences forever: another server takes the reclaimed capacity", async () => {
    const { accountId, poolId, server: dead, start } = await serverWithTwoCameras();
    const replacement = await enrollServer(t, accountId, poolId, "replacement");
    await replacement.registerEncoder("enc-9", "HD-IP200", "9.2");
    t.clock.set(new Date(start + 31 * DAY));
    await t.mesh.modules.allocation.runJobs!();
    await replacement.addCamera("enc-9", "cam-1");
    await replacement.addCamera("enc-9", "cam-2");
    expect((await poolAsListed(replacement, poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 2, free: 0 });
    expect(dead.leases.standing("enc-1", "cam-1", t.clock.now())).toBe("lapsed");
  });
});
