export { createAllocationModule, migrateAllocation, type AllocationModuleDeps } from "./module.js";
export { ALLOCATION_SCHEMA } from "./database.js";
export { reclaimLapsed } from "./reclaim.js";
