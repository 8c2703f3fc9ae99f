import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeFaultHarnesses, RUN_MS, SETUP_MS, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { report } from "./support/report.js";

// SPEC L7: a retry returns the same allocation, even when the first attempt committed and
// the replica died before replying (FAULT_CRASH_AFTER_COMMIT makes replica 0 do that).
describe("fault: a crash after commit and before the reply", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({
      postgres: "shared",
      redis: "private",
      envFor: (index) => ({ FAULT_CRASH_AFTER_COMMIT: index === 0 ? "0.2" : "0" }),
    });
  }, SETUP_MS);
  afterAll(async () => {
    await closeFaultHarnesses();
  }, SETUP_MS);

  it("the retry gets the allocation that was committed, never a second one", async () => {
    const { replicas } = h!;
    const run = h!.run();
    const { clients } = run;
    const crashes = () => replicas.exits().filter((e) => e.replica === 0 && !e.bySuite).length;
    await waitUntil("two crashes after commit", () => crashes() >= 2, 120_000);
    const before = clients.countOps();
    await waitUntil("traffic after the crashes", () => clients.countOps() >= before + 100);
    const result = await run.finish();
    report("crash after commit", result, replicas);

    expect(result.violations).toEqual([]);
    expect(replicas.exits().every((e) => e.replica === 0 && e.signal === "SIGKILL")).toBe(true);
    // Each crash left a committed grant unanswered; its client's retry elsewhere got that very allocation.
    expect(result.figures.retryReturnedCommitted).toBeGreaterThan(0);
  }, RUN_MS);
});
