export {
  createServerIdentityModule,
  migrateServerIdentity,
  SERVER_IDENTITY_ANONYMOUS_METHODS,
  type ServerIdentityModuleDeps,
} from "./module.js";
export { DEFAULT_BRUTE_FORCE_LIMITS, type BruteForceLimits, type FailureLimit } from "./brute-force.js";
export { SERVER_IDENTITY_SCHEMA } from "./database.js";
