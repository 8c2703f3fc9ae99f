import { createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { LeaseSchema, SignedLeaseSchema, type Lease } from "@cls/proto";
import { generateEd25519PrivateKeyPem, keyIdOf, privateKeyFromPem, publicKeyFromRaw, rawPublicKey } from "./keys.js";
import { createLeaseSigner, LeaseVerificationError, verifyLease, type PinnedLeaseKey } from "./lease.js";

const DAY_MS = 24 * 3600 * 1000;
const issued = new Date("2026-03-01T12:00:00.123Z");

function aLease(overrides: Partial<Lease> = {}): Lease {
  return create(LeaseSchema, {
    accountId: "acc_0123456789abcdef0123456789abcdef",
    poolId: "pool_0123456789abcdef0123456789abcdef",
    serverId: "srv_0123456789abcdef0123456789abcdef",
    encoderId: "enc-01",
    cameraId: "cam-07",
    licenceType: "edgevis-camera",
    serial: 9_007_199_254_740_993n, // beyond 2^53: must survive as a bigint
    issuedAt: timestampFromDate(issued),
    renewAfter: timestampFromDate(new Date(issued.getTime() + DAY_MS)),
    warnAfter: timestampFromDate(new Date(issued.getTime() + 7 * DAY_MS)),
    expiresAt: timestampFromDate(new Date(issued.getTime() + 30 * DAY_MS)),
    perpetual: false,
    ...overrides,
  });
}

const signer = createLeaseSigner(generateEd25519PrivateKeyPem());
const pinned: PinnedLeaseKey[] = [{ keyId: signer.keyId, publicKey: signer.publicKey }];

describe("lease signing", () => {
  it("round-trips every field through sign and verify", () => {
    const lease = aLease();
    const signed = signer.sign(lease);
    expect(signed.keyId).toBe(signer.keyId);
    expect(signed.signature).toHaveLength(64);
    const verified = verifyLease(signed, pinned);
    expect(verified).toEqual(lease);
    expect(verified.serial).toBe(9_007_199_254_740_993n);
    expect(verified.cameraId).toBe("cam-07");
    expect(verified.expiresAt).toEqual(timestampFromDate(new Date(issued.getTime() + 30 * DAY_MS)));
  });

  it("round-trips a perpetual legacy lease without times", () => {
    const lease = create(LeaseSchema, { accountId: "acc_x", encoderId: "enc", licenceType: "edgevis-legacy", perpetual: true, serial: 1n });
    expect(verifyLease(signer.sign(lease), pinned)).toEqual(lease);
  });

  it("signs with a standard Ed25519 signature any verifier can check", () => {
    const signed = signer.sign(aLease());
    expect(verify(null, signed.lease, publicKeyFromRaw(signer.publicKey), signed.signature)).toBe(true);
  });

  it("signs off the main thread to the same bytes as the synchronous signer", async () => {
    const lease = aLease();
    const signed = await signer.signAsync(lease);
    expect(verifyLease(signed, pinned)).toEqual(lease);
    const synchronous = signer.sign(lease);
    expect(signed.lease).toEqual(synchronous.lease);
    // Ed25519 is deterministic: the same key and bytes give the same signature.
    expect(signed.signature).toEqual(synchronous.signature);
    expect(signed.keyId).toBe(synchronous.keyId);
  });

  it("keeps each of many concurrent asynchronous signatures with its own lease", async () => {
    const leases = Array.from({ length: 64 }, (_, i) => aLease({ serial: BigInt(i + 1), cameraId: `cam-${i}` }));
    const signed = await Promise.all(leases.map((lease) => signer.signAsync(lease)));
    signed.forEach((s, i) => expect(verifyLease(s, pinned)).toEqual(leases[i]));
  });

  it("refuses a lease with any single byte flipped", () => {
    const signed = signer.sign(aLease());
    for (let i = 0; i < signed.lease.length; i++) {
      const lease = Uint8Array.from(signed.lease);
      lease[i] = lease[i]! ^ 0x01;
      const tampered = create(SignedLeaseSchema, { ...signed, lease });
      expect(() => verifyLease(tampered, pinned), `byte ${i}`).toThrow(LeaseVerificationError);
    }
  });

  it("refuses a signature with any single byte flipped", () => {
    const signed = signer.sign(aLease());
    for (let i = 0; i < signed.signature.length; i++) {
      const signature = Uint8Array.from(signed.signature);
      signature[i] = signature[i]! ^ 0x80;
      const tampered = create(SignedLeaseSchema, { ...signed, signature });
      expect(() => verifyLease(tampered, pinned), `byte ${i}`).toThrow(LeaseVerificationError);
    }
  });

  it("refuses a truncated or empty signature", () => {
    const signed = signer.sign(aLease());
    expect(() => verifyLease(create(SignedLeaseSchema, { ...signed, signature: signed.signature.slice(0, 63) }), pinned)).toThrow(
      LeaseVerificationError,
    );
    expect(() => verifyLease(create(SignedLeaseSchema, { ...signed, signature: new Uint8Array() }), pinned)).toThrow(
      LeaseVerificationError,
    );
  });

  it("refuses a lease signed by another key that claims the pinned key's id", () => {
    const impostor = createLeaseSigner(generateEd25519PrivateKeyPem());
    const forged = create(SignedLeaseSchema, { ...impostor.sign(aLease()), keyId: signer.keyId });
    expect(() => verifyLease(forged, pinned)).toThrow(LeaseVerificationError);
    expect(() => verifyLease(forged, pinned)).toThrow("lease signature does not verify");
  });

  it("refuses a lease whose key id is not pinned", () => {
    const other = createLeaseSigner(generateEd25519PrivateKeyPem());
    const signed = other.sign(aLease());
    expect(() => verifyLease(signed, pinned)).toThrow(LeaseVerificationError);
    expect(() => verifyLease(signed, pinned)).toThrow(/unknown key/);
    expect(() => verifyLease(signer.sign(aLease()), [])).toThrow(LeaseVerificationError);
  });

  it("accepts leases of either key while both are pinned (rotation)", () => {
    const next = createLeaseSigner(generateEd25519PrivateKeyPem());
    const both = [...pinned, { keyId: next.keyId, publicKey: next.publicKey }];
    expect(verifyLease(signer.sign(aLease({ serial: 1n })), both).serial).toBe(1n);
    expect(verifyLease(next.sign(aLease({ serial: 2n })), both).serial).toBe(2n);
  });

  it("reports a pinned key of the wrong length as a verification error", () => {
    const signed = signer.sign(aLease());
    const broken = [{ keyId: signer.keyId, publicKey: signer.publicKey.slice(0, 31) }];
    expect(() => verifyLease(signed, broken)).toThrow(LeaseVerificationError);
  });

  it("refuses to make a signer from a key that is not Ed25519", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(() => createLeaseSigner(privateKey.export({ format: "pem", type: "pkcs8" }).toString())).toThrow(/Ed25519/);
  });
});

describe("lease keys", () => {
  it("generates distinct Ed25519 PKCS#8 PEM keys", () => {
    const a = generateEd25519PrivateKeyPem();
    const b = generateEd25519PrivateKeyPem();
    expect(a).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(a).not.toBe(b);
    expect(privateKeyFromPem(a).asymmetricKeyType).toBe("ed25519");
  });

  it("keyIdOf is stable, short hex, and differs between keys", () => {
    const raw = rawPublicKey(createPublicKey(privateKeyFromPem(generateEd25519PrivateKeyPem())));
    expect(keyIdOf(raw)).toBe(keyIdOf(Uint8Array.from(raw)));
    expect(keyIdOf(raw)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyIdOf(raw)).not.toBe(keyIdOf(signer.publicKey));
    expect(signer.keyId).toBe(keyIdOf(signer.publicKey));
  });

  it("rawPublicKey gives the 32 raw bytes that publicKeyFromRaw turns back into the same key", () => {
    const publicKey = createPublicKey(privateKeyFromPem(generateEd25519PrivateKeyPem()));
    const raw = rawPublicKey(publicKey);
    expect(raw).toHaveLength(32);
    const again = publicKeyFromRaw(raw);
    expect(again.asymmetricKeyType).toBe("ed25519");
    expect(again.equals(publicKey)).toBe(true);
  });

  it("rawPublicKey refuses a key that is not Ed25519", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(() => rawPublicKey(publicKey)).toThrow("not an Ed25519 key");
  });

  it("publicKeyFromRaw refuses every length but 32", () => {
    for (const length of [0, 1, 31, 33, 64]) {
      expect(() => publicKeyFromRaw(new Uint8Array(length)), `length ${length}`).toThrow(`an Ed25519 public key is 32 bytes, got ${length}`);
    }
  });

  it("privateKeyFromPem refuses RSA and EC keys, naming what it got", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const x25519 = generateKeyPairSync("x25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    expect(() => privateKeyFromPem(rsa)).toThrow("expected an Ed25519 private key, got rsa");
    expect(() => privateKeyFromPem(ec)).toThrow("expected an Ed25519 private key, got ec");
    expect(() => privateKeyFromPem(x25519)).toThrow("expected an Ed25519 private key, got x25519");
  });

  it("privateKeyFromPem refuses text that is not a PEM key", () => {
    expect(() => privateKeyFromPem("not a key")).toThrow();
    expect(() => privateKeyFromPem("")).toThrow();
  });
});
