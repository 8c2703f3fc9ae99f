import { sql, type Kysely, type Transaction } from "kysely";
import type { Logger } from "pino";
import type { LockService, HeldLock } from "@cls/lock";
import { ALLOCATION_SCHEMA, type AllocationDatabase } from "./database.js";
import { PoolExhaustedError, PoolExpiredError } from "./errors.js";

const LOCK_TTL_MS = 2_000;
const LOCK_WAIT_MS = 1_000;
const MAX_FENCE_RETRIES = 3;

/** What a grant made of the pool row, for usage-threshold notifications. */
export interface GrantedUsage {
  capacity: number;
  usedBefore: number;
  usedAfter: number;
}

export type Grant<T> = { granted: true; usage: GrantedUsage; result: T } | { granted: false; result: T };

/**
 * Takes licences from a pool without ever exceeding its count (SPEC L7a).
 *
 * A per-pool Redis lock serialises work across replicas and hands out a fencing token.
 * The guarantee itself is the conditional UPDATE: it only adds when `used + n <= capacity`
 * and the pool is unexpired, so a lying lock, a lost fence counter or no Redis at all can
 * slow a grant down but never over-grant.
 */
export function createPoolAllocator(deps: { db: Kysely<AllocationDatabase>; locks: LockService; logger: Logger }) {
  const { db, locks, logger } = deps;
  const lockKey = (poolId: string, licenceType: string) => `pool:${poolId}:${licenceType}`;

  async function tryLock(key: string): Promise<HeldLock | null> {
    try {
      return await locks.acquire(key, { ttlMs: LOCK_TTL_MS, waitMs: LOCK_WAIT_MS });
    } catch (error) {
      // Redis is down or slow: carry on with Postgres alone, which is still correct.
      logger.warn({ err: error }, "lock store unavailable; allocating on Postgres alone");
      return null;
    }
  }

  /**
   * In one transaction: runs `claim` (which inserts the allocation rows and returns how
   * many licences they need), then adds them to the pool's `used` if they fit. When they
   * do not fit, the transaction rolls back and PoolExhaustedError or PoolExpiredError is thrown.
   * `claim` may return 0 (nothing new to take, e.g. an idempotent repeat): then it commits as is.
   */
  async function take<T>(
    poolId: string,
    licenceType: string,
    now: Date,
    claim: (trx: Transaction<AllocationDatabase>) => Promise<{ count: number; result: T }>,
    /** Runs in the same transaction once the licences are taken, e.g. to record events. */
    afterGrant: (trx: Transaction<AllocationDatabase>, usage: GrantedUsage, result: T) => Promise<void> = async () => {},
  ): Promise<Grant<T>> {
    const key = lockKey(poolId, licenceType);
    for (let attempt = 0; ; attempt++) {
      const lock = await tryLock(key);
      try {
        const outcome = await db.transaction().execute(async (trx) => {
          const claimed = await claim(trx);
          if (claimed.count === 0) return { kind: "nothing" as const, result: claimed.result };
          // After repeated stale fences, fall back to the fence-free update, which is still safe.
          const fence = attempt < MAX_FENCE_RETRIES ? (lock?.fence ?? null) : null;
          const { rows } = await sql<{ capacity: number; used: number }>`
            update ${sql.id(ALLOCATION_SCHEMA, "pool_usage")}
            set used = used + ${claimed.count}, fence = ${fence === null ? sql`fence` : sql`${fence}`}
            where pool_id = ${poolId} and licence_type = ${licenceType}
              and used + ${claimed.count} <= capacity
              and expires_at > ${now}
              and (${fence}::bigint is null or fence < ${fence}::bigint)
            returning capacity, used`.execute(trx);
          const row = rows[0];
          if (row) {
            const usage = { capacity: row.capacity, usedBefore: row.used - claimed.count, usedAfter: row.used };
            await afterGrant(trx, usage, claimed.result);
            return { kind: "granted" as const, result: claimed.result, usage };
          }
          await refuse(trx, poolId, licenceType, now, fence, key);
          throw new StaleFenceError();
        });
        if (outcome.kind === "nothing") return { granted: false, result: outcome.result };
        return { granted: true, usage: outcome.usage, result: outcome.result };
      } catch (error) {
        if (error instanceof StaleFenceError) continue;
        throw error;
      } finally {
        if (lock) {
          const released = await lock.release().catch(() => "expired" as const);
          if (released !== "released") logger.warn({ key, released }, "pool lock lost before release");
        }
      }
    }
  }

  /** Works out why the conditional update matched nothing, and throws the matching error. */
  async function refuse(
    trx: Transaction<AllocationDatabase>,
    poolId: string,
    licenceType: string,
    now: Date,
    fence: number | null,
    key: string,
  ): Promise<void> {
    const usage = await trx
      .selectFrom("pool_usage")
      .select(["capacity", "used", "fence", "expires_at"])
      .where("pool_id", "=", poolId)
      .where("licence_type", "=", licenceType)
      .executeTakeFirst();
    if (!usage) throw new PoolExhaustedError(poolId, licenceType, 0, 0);
    if (usage.expires_at <= now) throw new PoolExpiredError(poolId, usage.expires_at);
    if (fence !== null && usage.fence >= fence) {
      // The lock store forgot its counter (or this holder is stale): move it past what Postgres has seen.
      await locks.advanceFence(key, usage.fence).catch(() => {});
      return;
    }
    throw new PoolExhaustedError(poolId, licenceType, usage.capacity, usage.used);
  }

  return { take };
}

export type PoolAllocator = ReturnType<typeof createPoolAllocator>;

/** The fence in Postgres is newer than ours: retry with a fresh lock. */
class StaleFenceError extends Error {}
