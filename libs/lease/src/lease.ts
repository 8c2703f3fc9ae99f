import { sign, verify, createPublicKey, type KeyObject } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { LeaseSchema, SignedLeaseSchema, type Lease, type SignedLease } from "@cls/proto";
import { keyIdOf, privateKeyFromPem, publicKeyFromRaw, rawPublicKey } from "./keys.js";

/** A public key a verifier trusts, as pinned by an EdgeVis Server. */
export interface PinnedLeaseKey {
  keyId: string;
  publicKey: Uint8Array;
}

export interface LeaseSigner {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  sign(lease: Lease): SignedLease;
  /** The same signed lease as `sign`, computed on the libuv thread pool instead of the calling thread. */
  signAsync(lease: Lease): Promise<SignedLease>;
}

/** Signs leases with an Ed25519 private key (PKCS#8 PEM). */
export function createLeaseSigner(privateKeyPem: string): LeaseSigner {
  const privateKey = privateKeyFromPem(privateKeyPem);
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const keyId = keyIdOf(publicKey);
  return {
    keyId,
    publicKey,
    sign(lease) {
      // The signed bytes travel with the signature, so verification never re-encodes.
      const bytes = toBinary(LeaseSchema, lease);
      return create(SignedLeaseSchema, { lease: bytes, signature: sign(null, bytes, privateKey), keyId });
    },
    async signAsync(lease) {
      const bytes = toBinary(LeaseSchema, lease);
      return create(SignedLeaseSchema, { lease: bytes, signature: await signOnThreadPool(bytes, privateKey), keyId });
    },
  };
}

/** `crypto.sign` with a callback runs on the libuv thread pool (UV_THREADPOOL_SIZE threads, 4 by default). */
function signOnThreadPool(bytes: Uint8Array, privateKey: KeyObject): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    sign(null, bytes, privateKey, (error, signature) => (error ? reject(error) : resolve(signature)));
  });
}

export class LeaseVerificationError extends Error {
  override name = "LeaseVerificationError";
}

/** Checks a lease's signature against pinned keys and returns the lease it carries. */
export function verifyLease(signed: SignedLease, pinned: readonly PinnedLeaseKey[]): Lease {
  const key = pinned.find((candidate) => candidate.keyId === signed.keyId);
  if (!key) throw new LeaseVerificationError(`lease signed by unknown key ${JSON.stringify(signed.keyId)}`);
  let publicKey: KeyObject;
  try {
    publicKey = publicKeyFromRaw(key.publicKey);
  } catch (error) {
    throw new LeaseVerificationError(`pinned key ${key.keyId} is invalid: ${(error as Error).message}`);
  }
  if (!verify(null, signed.lease, publicKey, signed.signature)) {
    throw new LeaseVerificationError("lease signature does not verify");
  }
  return fromBinary(LeaseSchema, signed.lease);
}
