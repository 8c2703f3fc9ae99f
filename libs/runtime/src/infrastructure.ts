import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { openDatabase, type DatabaseHandle } from "@cls/db";
import { createInProcessLockService, createRedisLockService, type LockService } from "@cls/lock";
import type { ReadinessCheck } from "@cls/server";
import { sql } from "kysely";
import type { Redis } from "ioredis";
import { createInProcessRevocationList, createRedisRevocationList, type RevocationList } from "@cls/auth";

/** Outlives the longest access token (TOKEN_TTL_SECONDS is at most an hour). */
const REVOCATION_TTL_MS = 2 * 60 * 60 * 1000;

export interface Infrastructure {
  database: DatabaseHandle;
  locks: LockService;
  /** Revoked servers and API keys, shared by every replica through Redis when configured. */
  revocations: RevocationList;
  /** The Redis connection, when REDIS_URL is set. */
  redis?: Redis;
  /** Postgres and, when configured, Redis: what readiness reports on. */
  readiness: ReadinessCheck[];
  close(): Promise<void>;
}

/** Opens Postgres (or embedded PGlite) and the lock store (Redis, or in-process without it). */
export async function openInfrastructure(options: {
  databaseUrl?: string | undefined;
  embeddedDir?: string | undefined;
  maxConnections?: number;
  redisUrl?: string | undefined;
  logger: Logger;
}): Promise<Infrastructure> {
  const database = await openDatabase({
    url: options.databaseUrl,
    embeddedDir: options.embeddedDir,
    ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
  });
  const readiness: ReadinessCheck[] = [
    async () => {
      await sql`select 1`.execute(database.root);
      return true;
    },
  ];
  let locks: LockService;
  let revocations: RevocationList;
  let redis: Redis | undefined;
  if (options.redisUrl) {
    const redisLocks = createRedisLockService({ url: options.redisUrl });
    redis = redisLocks.redis;
    readiness.push(async () => (await redisLocks.redis.ping()) === "PONG");
    locks = redisLocks;
    revocations = createRedisRevocationList(redis, { ttlMs: REVOCATION_TTL_MS });
  } else {
    options.logger.warn("REDIS_URL is not set: using in-process locks, which are only correct with a single replica");
    locks = createInProcessLockService();
    revocations = createInProcessRevocationList();
  }
  return {
    database,
    locks,
    revocations,
    ...(redis ? { redis } : {}),
    readiness,
    async close() {
      await locks.close();
      await database.close();
    },
  };
}

/** Reads a file named by a configuration variable, naming the variable when it fails. */
export function readConfiguredFile(variable: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`${variable}: cannot read ${path}: ${(error as Error).message}`);
  }
}
