import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenIssuer } from "@cls/auth";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { Code, anonymousClients, customerClients, drainOutboxes, enrollServer, newServerClient, poolAsListed, refusal } from "./support.js";

/** FAQ: "No. Only servers authenticated with CLS can make licence requests to CLS." */
describe("Can a bad actor make requests against my licence pool in CLS?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Account A: a server holding one licence of two. */
  async function victim() {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const server = await enrollServer(t, accountId, poolId, "victim");
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    const held = await server.addCamera("enc-1", "cam-1");
    const usage = async () => (await poolAsListed(server, poolId)).byType["edgevis-camera"];
    return { accountId, poolId, server, held, usage };
  }

  it("calls without credentials, or with forged ones, are refused and change nothing", async () => {
    const a = await victim();
    const serverId = a.server.identity!.serverId;
    const forger = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock: t.clock, ttlMs: 300_000 });
    const forged = (await forger.issueServerToken(serverId, a.accountId)).token;
    const callers = {
      "no credentials": anonymousClients(t),
      "a made-up token": anonymousClients(t, { authorization: "Bearer not-a-token" }),
      "a token signed by another key": anonymousClients(t, { authorization: `Bearer ${forged}` }),
    };
    for (const [who, api] of Object.entries(callers)) {
      const attempts: Record<string, () => Promise<unknown>> = {
        registerEncoder: () => api.allocation.registerEncoder({ encoderId: "enc-x", model: "HD-IP200", firmwareVersion: "9.2" }),
        acquireLicence: () => api.allocation.acquireLicence({ encoderId: "enc-1", cameraId: "cam-2" }),
        releaseLicence: () => api.allocation.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1" }),
        checkEncoders: () => api.allocation.checkEncoders({ encoders: [{ encoderId: "enc-1", firmwareVersion: "9.2" }] }),
        listAllocations: () => api.allocation.listAllocations({}),
        switchPool: () => api.allocation.switchPool({ poolId: a.poolId }),
        listPools: () => api.pools.listPools({}),
        listNotifications: () => api.notifications.listNotifications({}),
      };
      for (const [method, attempt] of Object.entries(attempts)) {
        const refused = await refusal(attempt());
        expect({ who, method, code: Code[refused.code] }).toEqual({ who, method, code: Code[Code.Unauthenticated] });
      }
    }
    // SPEC L11: nothing was taken or released.
    expect(await a.usage()).toEqual({ total: 2, used: 1, free: 1 });
    const { allocations } = await a.server.allocation.listAllocations({});
    expect(allocations.map((x) => x.allocationId)).toEqual([a.held.allocation!.allocationId]);
  });

  it("knowing a server's id is not enough: signing in needs its private key, and a signed challenge works once", async () => {
    const a = await victim();
    const serverId = a.server.identity!.serverId;
    // An impostor with the server id and a key of its own.
    const impostor = newServerClient(t, {
      identity: { ...a.server.identity!, privateKeyPem: generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString() },
    });
    expect((await refusal(impostor.addCamera("enc-1", "cam-2"))).code).toBe(Code.Unauthenticated);

    // A captured sign-in (challenge and signature) cannot be replayed.
    const api = anonymousClients(t);
    const { challenge } = await api.identity.createChallenge({ serverId });
    const signature = sign(null, challenge, createPrivateKey(a.server.identity!.privateKeyPem));
    await api.identity.authenticate({ serverId, challenge, signature });
    expect((await refusal(api.identity.authenticate({ serverId, challenge, signature }))).code).toBe(Code.Unauthenticated);
    expect(await a.usage()).toEqual({ total: 2, used: 1, free: 1 });
  });

  it("an enrollment code works once: a second server cannot join the pool with it", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 2 });
    const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId, poolId });
    await newServerClient(t).enroll(enrollmentCode, "legitimate");
    const refused = await refusal(newServerClient(t).enroll(enrollmentCode, "intruder"));
    expect(refused.code).toBe(Code.AlreadyExists);
    expect((await t.vendor.identity.listServers({ accountId })).servers.map((s) => s.name)).toEqual(["legitimate"]);
  });

  it("a server of another account cannot touch my encoders, cameras, pools or notifications", async () => {
    const a = await victim();
    const aServer = a.server.identity!.serverId;
    const b = await seedAccount(t, { count: 5 });
    const intruder = await enrollServer(t, b.accountId, b.poolId, "intruder");
    const deniedOrMissing = [Code.PermissionDenied, Code.NotFound];
    const expectRefused = async (attempt: Promise<unknown>) => {
      const refused = await refusal(attempt);
      expect(deniedOrMissing).toContain(refused.code);
      // Never A's data in the error either (beyond the id the caller sent itself).
      for (const secret of [a.accountId, a.held.allocation!.allocationId, "victim"]) expect(refused.rawMessage).not.toContain(secret);
    };

    // SPEC L11: A's encoder and camera ids mean nothing coming from B's server.
    await expectRefused(intruder.addCamera("enc-1", "cam-2"));
    await expectRefused(intruder.allocation.checkEncoder({ encoderId: "enc-1", firmwareVersion: "9.2" }));
    await expectRefused(intruder.allocation.releaseLicence({ serverId: aServer, encoderId: "enc-1", cameraId: "cam-1" }));
    await expectRefused(intruder.allocation.switchPool({ poolId: a.poolId }));
    await expectRefused(intruder.allocation.switchPool({ serverId: aServer, poolId: b.poolId }));
    // Releasing "enc-1/cam-1" as itself releases nothing of A's.
    expect((await intruder.allocation.releaseLicence({ encoderId: "enc-1", cameraId: "cam-1" })).released).toBe(false);

    // Lists show only B's own things.
    expect((await intruder.allocation.listAllocations({ serverId: aServer })).allocations).toEqual([]);
    expect((await intruder.allocation.listAllocations({ encoderId: "enc-1", includeEnded: true })).allocations).toEqual([]);
    expect((await intruder.pools.listPools({})).pools.map((p) => p.poolId)).toEqual([b.poolId]);
    await drainOutboxes(t);
    const { notifications } = await intruder.notifications.listNotifications({ limit: 500 });
    expect(notifications.every((n) => n.accountId === b.accountId)).toBe(true);
    expect(JSON.stringify(notifications.map((n) => n.dataJson))).not.toContain(a.poolId);

    // B registering its own "enc-1" is B's encoder, drawing from B's pool.
    await intruder.registerEncoder("enc-1", "HD-IP200", "9.2");
    expect((await intruder.addCamera("enc-1", "cam-1")).lease.lease.poolId).toBe(b.poolId);

    // A's licence is untouched throughout.
    expect(await a.usage()).toEqual({ total: 2, used: 1, free: 1 });
    const { allocations } = await a.server.allocation.listAllocations({});
    expect(allocations.map((x) => [x.allocationId, x.poolId])).toEqual([[a.held.allocation!.allocationId, a.poolId]]);
  });

  it("a customer of another account cannot manage my servers with their API key", async () => {
    const a = await victim();
    const b = await seedAccount(t, { count: 5 });
    const other = await customerClients(t, b.accountId);
    for (const attempt of [
      () => other.allocation.switchPool({ serverId: a.server.identity!.serverId, poolId: b.poolId }),
      () => other.allocation.releaseLicence({ serverId: a.server.identity!.serverId, encoderId: "enc-1", cameraId: "cam-1" }),
      () => other.account.revokeAccountServer({ serverId: a.server.identity!.serverId }),
    ]) {
      const refused = await refusal(attempt());
      expect([Code.PermissionDenied, Code.NotFound]).toContain(refused.code);
    }
    expect((await other.allocation.listAllocations({ serverId: a.server.identity!.serverId })).allocations).toEqual([]);
    expect((await other.pools.listPools({})).pools.map((p) => p.poolId)).toEqual([b.poolId]);
    expect(await a.usage()).toEqual({ total: 2, used: 1, free: 1 });
  });

  it("a revoked server is stopped at its very next call, and its licences return to the pool", async () => {
    const a = await victim();
    // The server as shipped keeps its access token between calls; it has one now.
    const running = newServerClient(t, { identity: a.server.identity!, cacheToken: true });
    await running.registerEncoder("enc-2", "HD-IP200", "9.2");
    await t.vendor.identity.revokeServer({ serverId: a.server.identity!.serverId });
    // SPEC L11: revocation stops the server's calls at once, even with a token still in date.
    expect((await refusal(running.addCamera("enc-2", "cam-1"))).code).toBe(Code.PermissionDenied);
    // Nor can it sign in again.
    expect([Code.PermissionDenied, Code.Unauthenticated]).toContain((await refusal(a.server.addCamera("enc-1", "cam-2"))).code);
    const fresh = await enrollServer(t, a.accountId, a.poolId, "replacement");
    expect((await poolAsListed(fresh, a.poolId)).byType["edgevis-camera"]).toEqual({ total: 2, used: 0, free: 2 });
  });
});
