import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeFaultHarnesses, RUN_MS, SETUP_MS, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { LOG_PATTERNS } from "./support/replicas.js";
import { report } from "./support/report.js";

/** Sessions of the test database left in an open transaction, and sessions waiting for a lock. */
async function heldInPostgres(url: string): Promise<{ idleInTransaction: number; waitingOnLocks: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ idle: number; waiting: number }>(
      `select count(*) filter (where state = 'idle in transaction')::int as idle,
              count(*) filter (where wait_event_type = 'Lock')::int as waiting
       from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
    );
    return { idleInTransaction: rows[0]!.idle, waitingOnLocks: rows[0]!.waiting };
  } finally {
    await client.end();
  }
}

/** Longer than the pool lock's TTL (2 s in services/allocation/src/pool-allocator.ts). */
const FREEZE_MS = 4_000;

// SPEC L7a with a stale lock holder: a replica frozen past its lock's TTL, then resumed.
describe("fault: a replica frozen with SIGSTOP past the lock TTL, then resumed", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({ postgres: "shared", redis: "private" });
  }, SETUP_MS);
  afterAll(async () => {
    await closeFaultHarnesses();
  }, SETUP_MS);

  it("the fence or the conditional update keeps every pool exact", async () => {
    const { replicas } = h!;
    const run = h!.run();
    const { clients } = run;
    await waitUntil("a first stretch of traffic", () => clients.countOps() >= 150);
    let freezes = 0;
    const stuck: { idleInTransaction: number; waitingOnLocks: number }[] = [];
    // Freeze while the replica is working; again if it held no pool lock that time (bounded).
    do {
      await waitUntil("requests in flight on replica 1", () => clients.inFlight(1) > 0, 30_000, 1);
      replicas.freeze(1);
      freezes++;
      const before = clients.countOps();
      await sleep(FREEZE_MS / 2);
      // What the stale holder left behind in Postgres, for the figures: an open transaction
      // (holding the pool row, so others wait on it) or nothing (its fence will be stale).
      stuck.push(await heldInPostgres(h!.databaseUrl));
      await sleep(FREEZE_MS / 2);
      // The others carry on meanwhile: the frozen replica's pools are not blocked for good.
      replicas.thaw(1);
      await waitUntil("traffic after the thaw", () => clients.countOps() >= before + 150);
    } while (replicas.count(LOG_PATTERNS.staleLock) === 0 && freezes < 3);
    // Any lost attempt may have been carried out late by the thawed replica.
    const result = await run.finish({ landsLate: (attempt) => attempt.result === "lost" });
    report("replica SIGSTOP", result, replicas, { freezes, stuck });

    expect(result.violations).toEqual([]);
    expect(replicas.exits()).toEqual([]);
    expect(result.figures.allocations).toBeGreaterThan(0);
  }, RUN_MS);
});
