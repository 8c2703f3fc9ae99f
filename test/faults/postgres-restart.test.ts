import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeFaultHarnesses, RUN_MS, SETUP_MS, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { report } from "./support/report.js";

// SPEC L7a when Postgres restarts mid-run: every connection drops, clients retry. The suite
// restarts a private cluster of its own, never the machine's shared Postgres.
describe("fault: Postgres restarted mid-run", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({ postgres: "private", redis: "private" });
  }, SETUP_MS);
  afterAll(async () => {
    await closeFaultHarnesses();
  }, SETUP_MS);

  it("stays exact across a fast and an immediate restart", async () => {
    const { replicas } = h!;
    const postgres = h!.postgres!;
    const run = h!.run();
    const { clients } = run;
    const grants = () => clients.countOps((op) => op.outcome.type === "granted");
    await waitUntil("a first stretch of traffic", () => grants() >= 60);
    for (const mode of ["fast", "immediate"] as const) {
      await postgres.restart(mode);
      const after = grants();
      await waitUntil(`grants after the ${mode} restart`, () => grants() >= after + 60);
    }
    const result = await run.finish();
    report("Postgres restarted", result, replicas);

    expect(result.violations).toEqual([]);
    expect(result.figures.failedSamples).toBeGreaterThan(0);
    // Dropped connections fail the calls in flight (`unavailable`), never the process.
    expect(replicas.exits().filter((exit) => !exit.bySuite).map((exit) => exit.lastWords)).toEqual([]);
  }, RUN_MS);
});
