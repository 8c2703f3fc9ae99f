export type { HeldLock, LockService, ReleaseOutcome } from "./lock.js";
export { createRedisLockService, type RedisLockOptions } from "./redis-lock.js";
export { createInProcessLockService } from "./in-process-lock.js";
