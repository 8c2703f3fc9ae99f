export { startMesh, migrateAll, type MeshOptions, type RunningMesh, type MeshLayout, type ServiceName } from "./mesh.js";
export { loadOrCreateEd25519Key, LOCAL_STAFF_ACTOR } from "./keys.js";
