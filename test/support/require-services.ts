import pg from "pg";
import { Redis } from "ioredis";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "./env.js";

/** Fails the whole run, loudly and with the fix, when Postgres or Redis is missing. Never skips. */
export default async function requireServices(): Promise<void> {
  const problems: string[] = [];
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query("select 1");
  } catch (error) {
    problems.push(
      `Postgres is not reachable at ${TEST_DATABASE_URL} (${(error as Error).message}). ` +
        `Start it (e.g. 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start') or set DATABASE_URL.`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3_000, retryStrategy: () => null });
  redis.on("error", () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    problems.push(
      `Redis is not reachable at ${TEST_REDIS_URL} (${(error as Error).message}). ` +
        `Start it (e.g. 'redis-server --daemonize yes --port 6379 --save ""') or set REDIS_URL.`,
    );
  } finally {
    redis.disconnect();
  }
  if (problems.length > 0) throw new Error(`integration tests need real services:\n- ${problems.join("\n- ")}`);
}
