export { createPoolModule, migratePool, type PoolModuleDeps } from "./module.js";
export { POOL_SCHEMA } from "./database.js";
