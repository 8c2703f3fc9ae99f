export {
  createServerIdentityModule,
  migrateServerIdentity,
  SERVER_IDENTITY_ANONYMOUS_METHODS,
  type ServerIdentityModuleDeps,
} from "./module.js";
export { SERVER_IDENTITY_SCHEMA } from "./database.js";
