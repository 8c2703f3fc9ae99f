import { createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeVisClient, spkiPinOfPem, type ServerIdentity } from "@cls/edgevis-client";
import { rawPublicKey } from "@cls/lease";
import { AllocationState, ServerState } from "@cls/proto";
import { startTestMesh, type TestMesh } from "../support/mesh.js";
import { codeName, publicClients, refusal, type PublicClients } from "./support/public-api.js";
import { LICENCE_TYPE, MODEL, seedTenant, type Tenant } from "./support/tenant.js";

/**
 * SPEC L11 ("Keys"): revoking a server or an API key stops its very next call on every service,
 * although its access token has not expired; a server's key can be rotated without downtime.
 */

/** Every authenticated public call an EdgeVis Server makes, one per service at least. */
function serverCalls(clients: PublicClients, encoderId: string, cameraId: string): [string, () => Promise<unknown>][] {
  return [
    ["AllocationService/AcquireLicence", () => clients.allocation.acquireLicence({ encoderId, cameraId: `${cameraId}-new` })],
    ["AllocationService/RegisterEncoder", () => clients.allocation.registerEncoder({ encoderId: `${encoderId}-new`, model: MODEL, firmwareVersion: "9.2.1" })],
    ["AllocationService/CheckEncoder", () => clients.allocation.checkEncoder({ encoderId, firmwareVersion: "9.2.1" })],
    ["AllocationService/CheckEncoders", () => clients.allocation.checkEncoders({ encoders: [{ encoderId, firmwareVersion: "9.2.1" }] })],
    ["AllocationService/ReleaseLicence", () => clients.allocation.releaseLicence({ encoderId, cameraId })],
    ["AllocationService/ListAllocations", () => clients.allocation.listAllocations({})],
    ["PoolService/ListPools", () => clients.pools.listPools({})],
    ["NotificationService/ListNotifications", () => clients.notifications.listNotifications({})],
  ];
}

/** Every authenticated public call a customer makes with an API-key token. */
function customerCalls(clients: PublicClients, tenant: Tenant): [string, () => Promise<unknown>][] {
  return [
    ["PoolService/ListPools", () => clients.pools.listPools({})],
    ["AllocationService/ListAllocations", () => clients.allocation.listAllocations({})],
    ["AllocationService/ReleaseLicence", () => clients.allocation.releaseLicence({ serverId: tenant.serverId, encoderId: tenant.encoderId, cameraId: tenant.cameraIds[0]! })],
    ["AllocationService/SwitchPool", () => clients.allocation.switchPool({ serverId: tenant.serverId, poolId: tenant.otherPoolId })],
    ["NotificationService/ListNotifications", () => clients.notifications.listNotifications({})],
    ["AccountService/ListAccountServers", () => clients.account.listAccountServers({})],
    ["AccountService/NewEnrollmentCode", () => clients.account.newEnrollmentCode({ poolId: tenant.poolId })],
    ["AccountService/RevokeAccountServer", () => clients.account.revokeAccountServer({ serverId: tenant.serverId })],
  ];
}

/** The code each call was refused with (or "ok"), by call. */
async function outcomes(calls: [string, () => Promise<unknown>][]): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const [name, call] of calls) {
    result[name] = await call().then(
      () => "ok",
      async (error: unknown) => codeName((await refusal(Promise.reject(error))).code),
    );
  }
  return result;
}

const all = (calls: [string, unknown][], value: string) => Object.fromEntries(calls.map(([name]) => [name, value]));

/** A client for an already enrolled server that signs a fresh challenge before every call (no cached token). */
function clientFor(t: TestMesh, identity: ServerIdentity): EdgeVisClient {
  return new EdgeVisClient({
    baseUrl: t.publicUrl,
    ca: t.tls.cert,
    tlsPins: [spkiPinOfPem(t.tls.cert)],
    leaseKeys: [{ keyId: t.mesh.leaseSigner.keyId, publicKey: t.mesh.leaseSigner.publicKey }],
    identity,
    tokenMarginMs: Number.MAX_SAFE_INTEGER,
  });
}

describe("revocation and key rotation (SPEC L11)", () => {
  let t: TestMesh;
  let tenant: Tenant;

  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
    tenant = await seedTenant(t, "rev", { count: 10, cameras: 1 });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A newly enrolled server of the tenant with an encoder and one licensed camera, and its current token. */
  async function licensedServer(name: string) {
    const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId: tenant.accountId, poolId: tenant.poolId });
    const server = t.edgeVisServer();
    const identity = await server.enroll(enrollmentCode, name);
    await server.registerEncoder(`${name}-enc`, MODEL, "9.2.1");
    await server.addCamera(`${name}-enc`, `${name}-cam`);
    const token = await server.accessToken();
    return { server, identity, token, clients: publicClients(t, { token }), encoderId: `${name}-enc`, cameraId: `${name}-cam` };
  }

  async function usedInPool(): Promise<number> {
    const { pools } = await tenant.asCustomer.pools.listPools({});
    return pools.find((p) => p.poolId === tenant.poolId)!.entitlements.find((e) => e.licenceType === LICENCE_TYPE)!.used;
  }

  it("vendor RevokeServer stops the server's very next call on every service, with its token still unexpired", async () => {
    const s = await licensedServer("vendor-revoked");
    const calls = serverCalls(s.clients, s.encoderId, s.cameraId).filter(([name]) => name !== "AllocationService/ReleaseLicence");
    // Before: every call works with this token.
    expect(await outcomes(calls)).toEqual(all(calls, "ok"));
    const usedBefore = await usedInPool();
    // A challenge fetched before the revocation, to try a key rotation after it.
    const { challenge } = await s.clients.identity.createChallenge({ serverId: s.identity.serverId });

    const { server } = await t.vendor.identity.revokeServer({ serverId: s.identity.serverId });
    expect(server!.state).toBe(ServerState.REVOKED);

    // The token is still a valid, unexpired token: only the revocation stops it.
    await expect(t.mesh.tokenVerifier.verify(s.token)).resolves.toMatchObject({ kind: "server", serverId: s.identity.serverId });
    const after = serverCalls(s.clients, s.encoderId, s.cameraId);
    expect(await outcomes(after)).toEqual(all(after, "permission_denied"));
    // Rotating its key is refused too, and it cannot sign in for a new token.
    const { privateKey } = generateKeyPairSync("ed25519");
    const rotate = await refusal(
      s.clients.identity.rotateKey({ newPublicKey: rawPublicKey(createPublicKey(privateKey)), challenge, signature: sign(null, challenge, privateKey) }),
    );
    expect(codeName(rotate.code)).toBe("permission_denied");
    expect(codeName((await refusal(s.clients.identity.createChallenge({ serverId: s.identity.serverId }))).code)).toBe("unauthenticated");
    expect((await refusal(clientFor(t, s.identity).accessToken())).code).toBe(Code.Unauthenticated);
    // Its licences went back to the pool at once (the original camera plus the one AcquireLicence took before).
    expect(await usedInPool()).toBe(usedBefore - 2);
  });

  it("a customer's RevokeAccountServer stops the server's very next call on every service", async () => {
    const s = await licensedServer("customer-revoked");
    const calls = serverCalls(s.clients, s.encoderId, s.cameraId).filter(([name]) => name === "PoolService/ListPools" || name === "NotificationService/ListNotifications");
    expect(await outcomes(calls)).toEqual(all(calls, "ok"));

    const { server } = await tenant.asCustomer.account.revokeAccountServer({ serverId: s.identity.serverId });
    expect(server!.state).toBe(ServerState.REVOKED);

    await expect(t.mesh.tokenVerifier.verify(s.token)).resolves.toMatchObject({ serverId: s.identity.serverId });
    const after = serverCalls(s.clients, s.encoderId, s.cameraId);
    expect(await outcomes(after)).toEqual(all(after, "permission_denied"));
    expect((await refusal(clientFor(t, s.identity).accessToken())).code).toBe(Code.Unauthenticated);
    // The account's other servers are untouched.
    await expect(tenant.asServer.pools.listPools({})).resolves.toBeDefined();
  });

  it("revoking an API key stops the customer's very next call, and the key gets no new token", async () => {
    const { apiKey, secret } = await t.vendor.identity.createApiKey({ accountId: tenant.accountId, name: "to be revoked" });
    const anonymous = publicClients(t);
    const { accessToken } = await anonymous.identity.exchangeApiKey({ apiKey: secret });
    const customer = publicClients(t, { token: accessToken });
    // A throwaway server for the calls that act on one, so the tenant's own server is never touched.
    const target = await licensedServer("api-key-target");
    const subject: Tenant = { ...tenant, serverId: target.identity.serverId, encoderId: target.encoderId, cameraIds: [target.cameraId] };
    const reads = customerCalls(customer, subject).filter(([name]) => /List/.test(name));
    expect(await outcomes(reads)).toEqual(all(reads, "ok"));

    await t.vendor.identity.revokeApiKey({ keyId: apiKey!.keyId });

    await expect(t.mesh.tokenVerifier.verify(accessToken)).resolves.toMatchObject({ kind: "customer", apiKeyId: apiKey!.keyId });
    const after = customerCalls(customer, subject);
    expect(await outcomes(after)).toEqual(all(after, "permission_denied"));
    // (Or the shared brute-force limit, which refuses before looking at the key.)
    expect(["unauthenticated", "resource_exhausted"]).toContain(codeName((await refusal(anonymous.identity.exchangeApiKey({ apiKey: secret }))).code));
    // Nothing the revoked key asked for happened: the target server still holds its licence and is active.
    const { servers } = await tenant.asCustomer.account.listAccountServers({});
    expect(servers.find((s) => s.serverId === target.identity.serverId)!.state).toBe(ServerState.ACTIVE);
    const { allocations } = await target.clients.allocation.listAllocations({ serverId: target.identity.serverId });
    expect(allocations.map((a) => [a.cameraId, a.state])).toEqual([[target.cameraId, AllocationState.ACTIVE]]);
    // The account's other key still works.
    await expect(tenant.asCustomer.pools.listPools({})).resolves.toBeDefined();
  });

  it("rotates a server's key with no downtime: the old key no longer signs in, the new one does, the old token lasts until it expires", async () => {
    const s = await licensedServer("rotating");
    const oldKeyClient = clientFor(t, s.identity);
    await expect(oldKeyClient.accessToken()).resolves.toBeTruthy();

    const { newPrivateKeyPem, response } = await rotateKeyWithNewKey(s.clients, s.identity.serverId);
    expect(response.server!.serverId).toBe(s.identity.serverId);

    // No downtime: the token from before the rotation keeps working...
    await expect(s.clients.pools.listPools({})).resolves.toBeDefined();
    await expect(s.clients.allocation.acquireLicence({ encoderId: s.encoderId, cameraId: "after-rotation" })).resolves.toBeDefined();
    // ...the old key can no longer sign in...
    expect((await refusal(oldKeyClient.accessToken())).code).toBe(Code.Unauthenticated);
    // ...and the new key can, and its server carries on.
    const rotated = clientFor(t, { ...s.identity, privateKeyPem: newPrivateKeyPem });
    const granted = await rotated.addCamera(s.encoderId, "with-new-key");
    expect(granted.lease.lease.serverId).toBe(s.identity.serverId);

    // The old token ends when it expires (5 minutes), not before and not after.
    const { expiresAt } = decodeExpiry(s.token);
    expect(expiresAt.getTime()).toBeGreaterThan(t.clock.now().getTime());
    t.clock.set(new Date(expiresAt.getTime() - 1_000));
    await expect(s.clients.pools.listPools({})).resolves.toBeDefined();
    t.clock.set(new Date(expiresAt.getTime() + 1_000));
    expect((await refusal(s.clients.pools.listPools({}))).code).toBe(Code.Unauthenticated);
    // The new key signs in at any time.
    await expect(rotated.allocation.listAllocations({})).resolves.toBeDefined();
  });
});

/** The `exp` of an access token (a JWT), as a date. */
function decodeExpiry(token: string): { expiresAt: Date } {
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number };
  return { expiresAt: new Date(payload.exp * 1000) };
}

/** RotateKey as the calling server: a fresh challenge signed with a new key. */
async function rotateKeyWithNewKey(clients: PublicClients, serverId: string) {
  const { privateKey } = generateKeyPairSync("ed25519");
  const { challenge } = await clients.identity.createChallenge({ serverId });
  const response = await clients.identity.rotateKey({
    newPublicKey: rawPublicKey(createPublicKey(privateKey)),
    challenge,
    signature: sign(null, challenge, privateKey),
  });
  return { response, newPrivateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
}
