export { EdgeVisClient, type EdgeVisClientOptions, type ServerIdentity, type VerifiedLease } from "./client.js";
export { pinnedIdentityCheck, spkiPinOfPem } from "./pinning.js";
export { LeaseBook, type LicenceStanding } from "./lease-book.js";
