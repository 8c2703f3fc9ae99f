export { createLeaseSigner, verifyLease, LeaseVerificationError, type LeaseSigner, type PinnedLeaseKey } from "./lease.js";
export { generateEd25519PrivateKeyPem, rawPublicKey, publicKeyFromRaw, privateKeyFromPem, keyIdOf } from "./keys.js";
