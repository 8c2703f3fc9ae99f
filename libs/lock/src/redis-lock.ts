import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import type { HeldLock, LockService, ReleaseOutcome } from "./lock.js";

// Takes the lock and, in the same atomic step, the next fence from a counter that never expires.
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`;

// Compare-and-delete: only the owner's token releases the lock.
const RELEASE = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if holder then return -1 end
return 0`;

const ADVANCE_FENCE = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1`;

const CONNECT_WAIT_MS = 500;

type LockCommands = {
  clsAcquire(lockKey: string, fenceKey: string, token: string, ttlMs: number): Promise<number>;
  clsRelease(lockKey: string, token: string): Promise<number>;
  clsAdvanceFence(fenceKey: string, seen: number): Promise<number>;
};

export interface RedisLockOptions {
  url: string;
  /** Prefix of every key this lock service writes. */
  prefix?: string;
}

/** Locks in Redis with fencing tokens (SET NX PX + INCR in one script; compare-and-delete release). */
export function createRedisLockService(options: RedisLockOptions): LockService & { readonly redis: Redis } {
  const prefix = options.prefix ?? "cls:lock:";
  const redis = new Redis(options.url, {
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
  });
  // Connection errors surface on each command; an unhandled 'error' event must not crash the process.
  redis.on("error", () => {});
  redis.defineCommand("clsAcquire", { numberOfKeys: 2, lua: ACQUIRE });
  redis.defineCommand("clsRelease", { numberOfKeys: 1, lua: RELEASE });
  redis.defineCommand("clsAdvanceFence", { numberOfKeys: 1, lua: ADVANCE_FENCE });
  const commands = redis as unknown as LockCommands;

  const lockKey = (key: string) => `${prefix}${key}`;
  // A namespace of its own, so no lock key can ever coincide with a fence counter.
  const fenceKey = (key: string) => `${prefix}fence:${key}`;

  /**
   * Just after start-up the connection may still be opening: wait briefly rather than fail.
   * Once Redis has been lost (reconnecting), fail at once: callers go on without the lock.
   */
  async function connected(): Promise<void> {
    if (redis.status === "ready") return;
    if (redis.status === "connecting" || redis.status === "connect" || redis.status === "wait") {
      await Promise.race([once(redis, "ready"), sleep(CONNECT_WAIT_MS)]);
    }
  }

  return {
    redis,
    async acquire(key, { ttlMs, waitMs }) {
      await connected();
      const token = randomBytes(16).toString("base64url");
      const deadline = Date.now() + waitMs;
      let pauseMs = 1;
      for (;;) {
        const fence = Number(await commands.clsAcquire(lockKey(key), fenceKey(key), token, ttlMs));
        if (fence > 0) {
          return {
            key,
            fence,
            async release(): Promise<ReleaseOutcome> {
              const outcome = Number(await commands.clsRelease(lockKey(key), token));
              return outcome === 1 ? "released" : outcome === -1 ? "taken_over" : "expired";
            },
          } satisfies HeldLock;
        }
        if (Date.now() >= deadline) return null;
        await sleep(pauseMs + Math.random() * pauseMs);
        pauseMs = Math.min(pauseMs * 2, 20);
      }
    },
    async advanceFence(key, seen) {
      await connected();
      await commands.clsAdvanceFence(fenceKey(key), seen);
    },
    async close() {
      redis.disconnect();
    },
  };
}
