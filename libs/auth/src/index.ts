export { callerKey, type Caller, type ServerCaller } from "./caller.js";
export {
  createTokenIssuer,
  createTokenVerifier,
  parsePublicKeysPem,
  type TokenIssuer,
  type TokenVerifier,
  type IssuedToken,
} from "./tokens.js";
