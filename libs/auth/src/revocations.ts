import type { Redis } from "ioredis";

/**
 * Subjects (`server:<id>`, `apikey:<id>`) whose access tokens must stop working at once, on
 * every replica. Entries only need to outlive the longest access token: after that no
 * token of the subject exists, and server-identity issues no new ones.
 */
export interface RevocationList {
  revoke(subject: string): Promise<void>;
  isRevoked(subject: string): Promise<boolean>;
}

/** Shared by all replicas through Redis. */
export function createRedisRevocationList(redis: Redis, options: { ttlMs: number; prefix?: string }): RevocationList {
  const key = (subject: string) => `${options.prefix ?? "cls:revoked:"}${subject}`;
  return {
    async revoke(subject) {
      await redis.set(key(subject), "1", "PX", options.ttlMs);
    },
    async isRevoked(subject) {
      return (await redis.exists(key(subject))) === 1;
    },
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
