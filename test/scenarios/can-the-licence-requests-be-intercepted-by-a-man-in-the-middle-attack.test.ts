import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { createLeaseSigner, generateEd25519PrivateKeyPem, LeaseVerificationError } from "@cls/lease";
import { loadOrCreateSelfSignedTls } from "@cls/server";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { enrollServer } from "./support.js";

/**
 * FAQ: "No. The server uses certificate pinning to ensure that responses it receives back come
 * from a trusted server." (SPEC L9, L12: the TLS key and the lease-signing key are pinned.)
 */
describe("Can the licence requests be intercepted by a man-in-the-middle attack?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a server pinned to CLS's certificate refuses one with another key, even when it trusts it", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    const impostorTls = await loadOrCreateSelfSignedTls(mkdtempSync(join(tmpdir(), "cls-mitm-")));
    // The server trusts CLS's certificate as a CA, but pins a different key: the one it expects.
    const misled = new EdgeVisClient({
      baseUrl: t.publicUrl,
      ca: t.tls.cert,
      tlsPins: [spkiPinOfPem(impostorTls.cert)],
      leaseKeys: [{ keyId: t.mesh.leaseSigner.keyId, publicKey: t.mesh.leaseSigner.publicKey }],
      identity: server.identity!,
    });
    const error = await misled.registerEncoder("enc-1", "HD-IP200", "9.2").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(error)).toContain("is not pinned");
  });

  it("a lease not signed by CLS's pinned key is rejected by the server", async () => {
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    const { lease } = await server.addCamera("enc-1", "cam-1");
    // A forger re-signs the same lease bytes with its own key.
    const forger = createLeaseSigner(generateEd25519PrivateKeyPem());
    const forged = forger.sign(lease.lease);
    expect(() => server.verify(forged)).toThrow(LeaseVerificationError);
    // Even when it claims to come from CLS's key.
    expect(() => server.verify({ ...forged, keyId: t.mesh.leaseSigner.keyId })).toThrow(LeaseVerificationError);
    // Tampered bytes under CLS's own signature are rejected too.
    const tampered = { ...lease.signed, lease: Uint8Array.from(lease.signed.lease, (b, i) => (i === 3 ? b ^ 1 : b)) };
    expect(() => server.verify(tampered)).toThrow(LeaseVerificationError);
    // The genuine lease verifies.
    expect(server.verify(lease.signed).lease.cameraId).toBe("cam-1");
  });
});
