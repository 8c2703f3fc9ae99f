import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeVisClient, spkiPinOfPem, type VerifiedLease } from "@cls/edgevis-client";
import { createLeaseSigner, generateEd25519PrivateKeyPem, LeaseVerificationError } from "@cls/lease";
import { LeaseSchema, SignedLeaseSchema, type SignedLease } from "@cls/proto";
import { loadOrCreateSelfSignedTls, type TlsMaterial } from "@cls/server";
import { startTestMesh, type TestMesh } from "../support/mesh.js";
import { startMitmProxy, type MitmProxy } from "./support/mitm.js";
import { MODEL, seedTenant, type Tenant } from "./support/tenant.js";

/**
 * SPEC L12: EdgeVis Servers pin CLS's TLS key and its lease-signing key, so a man in the middle
 * gets nothing: not a byte of a request through a certificate the server would otherwise
 * trust, and no lease that CLS's key did not sign.
 */
describe("pinning: a man in the middle gets nothing (SPEC L12)", () => {
  let t: TestMesh;
  let tenant: Tenant;
  let mitmDir: string;
  let mitmTls: TlsMaterial;
  let mitm: MitmProxy;

  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
    tenant = await seedTenant(t, "pin", { cameras: 1 });
    mitmDir = mkdtempSync(join(tmpdir(), "cls-mitm-"));
    mitmTls = await loadOrCreateSelfSignedTls(mitmDir);
    mitm = await startMitmProxy({ own: mitmTls, upstreamUrl: t.publicUrl, upstreamCa: t.tls.cert });
  });
  afterAll(async () => {
    await mitm?.close();
    await t?.close();
    if (mitmDir) rmSync(mitmDir, { recursive: true, force: true });
  });

  /** An EdgeVis Server's client that trusts both certificates, reaching CLS through the proxy. */
  function throughProxy(pins: string[], identity = tenant.server.identity) {
    return new EdgeVisClient({
      baseUrl: mitm.url,
      ca: `${mitmTls.cert}\n${t.tls.cert}`,
      tlsPins: pins,
      leaseKeys: [{ keyId: t.mesh.leaseSigner.keyId, publicKey: t.mesh.leaseSigner.publicKey }],
      ...(identity ? { identity } : {}),
    });
  }

  it("the proxy really relays: a client that pinned the proxy's key talks to CLS through it, in plain sight of it", async () => {
    expect(spkiPinOfPem(mitmTls.cert)).not.toBe(spkiPinOfPem(t.tls.cert));
    mitm.reset();
    const fooled = throughProxy([spkiPinOfPem(mitmTls.cert)]);
    const { keyId } = await fooled.allocation.getLeaseKey({});
    expect(keyId).toBe(t.mesh.leaseSigner.keyId);
    await fooled.pools.listPools({});
    expect(mitm.handshakes()).toBeGreaterThan(0);
    // It read the server's sign-in: its id and the challenge it signed.
    const seen = mitm.plaintext().toString("latin1");
    expect(seen).toContain(tenant.serverId);
    expect(seen).toContain("cls-challenge-v1.");
  });

  it("an EdgeVis Server pinned to CLS's key refuses the proxy's trusted certificate and sends it nothing", async () => {
    const realPin = spkiPinOfPem(t.tls.cert);
    const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId: tenant.accountId, poolId: tenant.poolId });
    mitm.reset();

    // A new server enrolling through the proxy: refused before the code leaves the machine.
    const enrolling = throughProxy([realPin], undefined);
    await expect(enrolling.enroll(enrollmentCode, "through-the-middle")).rejects.toThrow(`certificate public key ${spkiPinOfPem(mitmTls.cert)} is not pinned`);
    // An enrolled server: no challenge, no token, no licence request goes through.
    const enrolled = throughProxy([realPin]);
    await expect(enrolled.accessToken()).rejects.toThrow(/is not pinned/);
    await expect(enrolled.addCamera(tenant.encoderId, "cam-through-the-middle")).rejects.toThrow(/is not pinned/);
    await expect(enrolled.allocation.getLeaseKey({})).rejects.toThrow(/is not pinned/);

    // The clients did reach the proxy, and stopped at its certificate.
    expect(mitm.connections()).toBeGreaterThanOrEqual(4);
    expect(mitm.plaintext().length, "bytes the man in the middle decrypted").toBe(0);
    // The enrollment code never reached anyone: it still enrolls a server directly.
    const direct = t.edgeVisServer();
    await expect(direct.enroll(enrollmentCode, "direct")).resolves.toMatchObject({ accountId: tenant.accountId, poolId: tenant.poolId });
  });

  describe("leases", () => {
    let genuine: VerifiedLease;
    beforeAll(async () => {
      await tenant.server.registerEncoder("lease-enc", MODEL, "9.2.1");
      genuine = (await tenant.server.addCamera("lease-enc", "lease-cam")).lease;
    });

    const rejects = (signed: SignedLease, message: RegExp) => {
      let thrown: unknown;
      try {
        tenant.server.verify(signed);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(LeaseVerificationError);
      expect((thrown as Error).message).toMatch(message);
    };

    it("a genuine lease verifies against the pinned key", () => {
      const { lease } = tenant.server.verify(genuine.signed);
      expect(lease).toMatchObject({ accountId: tenant.accountId, serverId: tenant.serverId, encoderId: "lease-enc", cameraId: "lease-cam" });
      expect(genuine.signed.keyId).toBe(t.mesh.leaseSigner.keyId);
    });

    it("a copy of a real lease signed by another key is rejected, under its own key id or CLS's", () => {
      const forger = createLeaseSigner(generateEd25519PrivateKeyPem());
      const lease = fromBinary(LeaseSchema, genuine.signed.lease);
      const forged = forger.sign(lease);
      rejects(forged, /unknown key/);
      // Claiming CLS's key id does not help: the signature is checked with the pinned key.
      rejects(create(SignedLeaseSchema, { ...forged, keyId: genuine.signed.keyId }), /does not verify/);
    });

    it("a tampered lease is rejected: longer expiry, another camera, a changed or truncated signature", () => {
      const lease = fromBinary(LeaseSchema, genuine.signed.lease);
      const longer = create(LeaseSchema, { ...lease, expiresAt: timestampFromDate(new Date(Date.now() + 10 * 365 * 24 * 3600 * 1000)) });
      rejects(create(SignedLeaseSchema, { ...genuine.signed, lease: toBinary(LeaseSchema, longer) }), /does not verify/);
      const otherCamera = create(LeaseSchema, { ...lease, cameraId: "someone-elses-camera" });
      rejects(create(SignedLeaseSchema, { ...genuine.signed, lease: toBinary(LeaseSchema, otherCamera) }), /does not verify/);
      const flipped = Uint8Array.from(genuine.signed.signature);
      flipped[0] = flipped[0]! ^ 0x01;
      rejects(create(SignedLeaseSchema, { ...genuine.signed, signature: flipped }), /does not verify/);
      rejects(create(SignedLeaseSchema, { ...genuine.signed, signature: genuine.signed.signature.slice(0, 32) }), /does not verify/);
      rejects(create(SignedLeaseSchema, { ...genuine.signed, signature: new Uint8Array() }), /does not verify/);
      // The untouched original still verifies.
      expect(tenant.server.verify(genuine.signed).lease.cameraId).toBe("lease-cam");
    });
  });
});
