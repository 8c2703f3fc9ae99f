export { createLogger, type Logger } from "./logger.js";
export { errorInterceptor, toConnectError } from "./error-interceptor.js";
export { loggingInterceptor } from "./logging-interceptor.js";
export { authInterceptor } from "./auth-interceptor.js";
export { registerHealth, type ReadinessCheck } from "./health.js";
export { startServers, bind, type ServiceBinding, type PortOptions, type StartServersOptions, type RunningServers } from "./serve.js";
export { loadOrCreateSelfSignedTls, spkiPin, type TlsMaterial } from "./tls.js";
export { exitOnSignals } from "./shutdown.js";
export { requireCaller, requireServerCaller, requireCustomerCaller, actorOf, callerActor } from "./caller.js";
