import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { openDatabase, type DatabaseHandle } from "@cls/db";
import { createInProcessLockService, createRedisLockService, type LockService } from "@cls/lock";
import type { ReadinessCheck } from "@cls/server";
import { sql } from "kysely";

export interface Infrastructure {
  database: DatabaseHandle;
  locks: LockService;
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
  if (options.redisUrl) {
    const redisLocks = createRedisLockService({ url: options.redisUrl });
    readiness.push(async () => (await redisLocks.redis.ping()) === "PONG");
    locks = redisLocks;
  } else {
    options.logger.warn("REDIS_URL is not set: using in-process locks, which are only correct with a single replica");
    locks = createInProcessLockService();
  }
  return {
    database,
    locks,
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
