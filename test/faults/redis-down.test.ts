import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeFaultHarnesses, RUN_MS, SETUP_MS, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { LOG_PATTERNS } from "./support/replicas.js";
import { report } from "./support/report.js";

// SPEC L7a with no Redis at all: allocation goes on, on Postgres alone (DESIGN.md).
describe("fault: Redis down for the whole run", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({ postgres: "shared", redis: "down" });
  }, SETUP_MS);
  afterAll(async () => {
    await closeFaultHarnesses();
  }, SETUP_MS);

  it("allocates on Postgres alone, exactly", async () => {
    const { replicas } = h!;
    const run = h!.run();
    const { clients } = run;
    await waitUntil("grants without Redis", () => clients.countOps((op) => op.outcome.type === "granted") >= 150);
    const result = await run.finish();
    report("Redis down", result, replicas);

    expect(result.violations).toEqual([]);
    expect(replicas.exits()).toEqual([]);
    expect(replicas.count(LOG_PATTERNS.lockStoreDown)).toBeGreaterThan(0);
    expect(result.counters.lockUnavailable).toBeGreaterThan(0);
  }, RUN_MS);
});
