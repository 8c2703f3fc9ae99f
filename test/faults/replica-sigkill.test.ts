import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeFaultHarnesses, RUN_MS, SETUP_MS, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { report } from "./support/report.js";

// SPEC L7a under a replica killed mid-request: its clients retry on another replica.
describe("fault: a replica killed with SIGKILL mid-request", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({ postgres: "shared", redis: "private" });
  }, SETUP_MS);
  afterAll(async () => {
    await closeFaultHarnesses();
  }, SETUP_MS);

  it("never over-allocates, loses no acknowledged allocation and never allocates twice for a retry", async () => {
    const { replicas } = h!;
    const run = h!.run();
    const { clients } = run;
    await waitUntil("a first stretch of traffic", () => clients.countOps() >= 150);
    // Kill while requests are in the replica's hands.
    await waitUntil("requests in flight on replica 1", () => clients.inFlight(1) > 0, 30_000, 1);
    const before = clients.countOps();
    await replicas.kill(1);
    await waitUntil("traffic after the kill", () => clients.countOps() >= before + 150);
    await replicas.waitAllUp();
    const back = clients.countOps((op) => op.attempts.some((a) => a.replica === 1 && a.result === "answered"));
    await waitUntil("the restarted replica serving", () => clients.countOps((op) => op.attempts.some((a) => a.replica === 1 && a.result === "answered")) > back + 20);
    const result = await run.finish();
    report("replica SIGKILL", result, replicas);

    expect(result.violations).toEqual([]);
    expect(replicas.exits()).toEqual([expect.objectContaining({ replica: 1, bySuite: true, signal: "SIGKILL" })]);
    expect(result.figures.lostAttempts).toBeGreaterThan(0);
    expect(result.figures.allocations).toBeGreaterThan(0);
  }, RUN_MS);
});
