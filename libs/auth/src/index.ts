export { callerKey, internalActorKey, revocationSubject, type Caller, type ServerCaller, type CustomerCaller } from "./caller.js";
export {
  createTokenIssuer,
  createTokenVerifier,
  parsePublicKeysPem,
  type TokenIssuer,
  type TokenVerifier,
  type IssuedToken,
} from "./tokens.js";
export { createRedisRevocationList, createInProcessRevocationList, type RevocationList } from "./revocations.js";
export {
  createInternalSigner,
  createInternalVerifier,
  parseTrustedCallers,
  type InternalSigner,
  type InternalVerifier,
  type TrustedCaller,
} from "./internal-tokens.js";
