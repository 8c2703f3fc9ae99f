export { EdgeVisClient, type EdgeVisClientOptions, type ServerIdentity } from "./client.js";
export { pinnedIdentityCheck, spkiPinOfPem } from "./pinning.js";
export { LeaseBook, type LicenceStanding, type VerifiedLease } from "./lease-book.js";
