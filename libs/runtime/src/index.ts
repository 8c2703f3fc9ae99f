export type { ServiceModule } from "./module.js";
export { internalGrpcClient, inProcessClient, lateBoundClient } from "./clients.js";
export { openInfrastructure, readConfiguredFile, type Infrastructure } from "./infrastructure.js";
export { runStandaloneService, type StandaloneOptions, type BuildContext } from "./standalone.js";
export { startInterval } from "./interval.js";
