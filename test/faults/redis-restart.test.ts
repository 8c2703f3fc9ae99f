import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { closeFaultHarnesses, RUN_MS, SETUP_MS, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { report } from "./support/report.js";
import { LICENCE_TYPE } from "./support/seed.js";

// SPEC L7a when Redis loses everything (locks and fence counters) mid-run.
describe("fault: Redis restarted empty mid-run", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({ postgres: "shared", redis: "private" });
  }, SETUP_MS);
  afterAll(async () => {
    await closeFaultHarnesses();
  }, SETUP_MS);

  it("stays exact, and the fence counters are carried past Postgres's again", async () => {
    const { replicas, fleet } = h!;
    const redis = h!.redis!;
    const run = h!.run();
    const { clients } = run;
    await waitUntil("a first stretch of traffic", () => clients.countOps() >= 150);
    await redis.restartEmpty();
    const restartedAt = Date.now();
    const grantedAfter = () => clients.countOps((op) => op.startedAt > restartedAt && op.outcome.type === "granted");
    await waitUntil("grants after the restart", () => grantedAfter() >= 80);
    const result = await run.finish();

    // Each pool's counter in the new Redis was advanced past the fence Postgres last saw.
    const db = new pg.Client({ connectionString: h!.databaseUrl });
    await db.connect();
    const fences = new Map(
      (await db.query<{ pool_id: string; fence: string }>("select pool_id, fence from allocation.pool_usage")).rows.map((r) => [r.pool_id, Number(r.fence)]),
    );
    await db.end();
    const inspector = redis.client();
    const behind: string[] = [];
    let counted = 0;
    for (const { poolId } of fleet.pools) {
      const value = await inspector.get(`cls:lock:fence:pool:${poolId}:${LICENCE_TYPE}`);
      if (value === null) continue;
      counted++;
      if (Number(value) < fences.get(poolId)!) behind.push(`${poolId}: redis ${value} < postgres ${fences.get(poolId)}`);
    }
    inspector.disconnect();
    report("Redis restarted empty", result, replicas, { grantsAfterRestart: grantedAfter(), fenceCountersChecked: counted });

    expect(result.violations).toEqual([]);
    expect(replicas.exits()).toEqual([]);
    expect(counted).toBeGreaterThan(0);
    // The first grant of each pool after the restart carried a fence from the emptied counter,
    // older than Postgres's: refused by the fence, then retried with an advanced one.
    expect(result.counters.fenceRejections).toBeGreaterThan(0);
    expect(behind).toEqual([]);
  }, RUN_MS);
});
