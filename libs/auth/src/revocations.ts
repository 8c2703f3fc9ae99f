import type { Redis } from "ioredis";
import { createBatchedLookup } from "./batched-lookup.js";

/**
 * Subjects (`server:<id>`, `apikey:<id>`) whose access tokens must stop working at once, on
 * every replica. Entries only need to outlive the longest access token: after that no
 * token of the subject exists, and server-identity issues no new ones.
 */
export interface RevocationList {
  revoke(subject: string): Promise<void>;
  isRevoked(subject: string): Promise<boolean>;
}

/** Checks answered by one Redis request at most: bounds its size and how long it holds the connection. */
const MAX_CHECKS_PER_REQUEST = 256;

/**
 * Shared by all replicas through Redis. Every authenticated call is checked, so the checks
 * of calls arriving together share one `MGET`. A check is only ever sent after it is asked
 * for, so it sees every revocation written before.
 */
export function createRedisRevocationList(redis: Redis, options: { ttlMs: number; prefix?: string }): RevocationList {
  const key = (subject: string) => `${options.prefix ?? "cls:revoked:"}${subject}`;
  const isRevoked = createBatchedLookup(
    async (subjects) => (await redis.mget(subjects.map(key))).map((value) => value !== null),
    { maxBatch: MAX_CHECKS_PER_REQUEST, maxInFlight: 2 },
  );
  return {
    async revoke(subject) {
      await redis.set(key(subject), "1", "PX", options.ttlMs);
    },
    isRevoked,
  };
}

/** For a single process (the embedded default). */
export function createInProcessRevocationList(): RevocationList {
  const revoked = new Set<string>();
  return {
    async revoke(subject) {
      revoked.add(subject);
    },
    async isRevoked(subject) {
      return revoked.has(subject);
    },
  };
}
