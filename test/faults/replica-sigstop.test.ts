import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeFaultHarnesses, startFaultHarness, type FaultHarness } from "./support/harness.js";
import { waitUntil } from "./support/processes.js";
import { LOG_PATTERNS } from "./support/replicas.js";
import { report } from "./support/report.js";

/** Longer than the pool lock's TTL (2 s in services/allocation/src/pool-allocator.ts). */
const FREEZE_MS = 4_000;

// SPEC L7a with a stale lock holder: a replica frozen past its lock's TTL, then resumed.
describe("fault: a replica frozen with SIGSTOP past the lock TTL, then resumed", () => {
  let h: FaultHarness | undefined;
  beforeAll(async () => {
    h = await startFaultHarness({ postgres: "shared", redis: "private" });
  });
  afterAll(async () => {
    await closeFaultHarnesses();
  });

  it("the fence or the conditional update keeps every pool exact", async () => {
    const { replicas } = h!;
    const run = h!.run();
    const { clients } = run;
    await waitUntil("a first stretch of traffic", () => clients.countOps() >= 200);
    let freezes = 0;
    // Freeze while the replica is working; again if it held no pool lock that time (bounded).
    do {
      await waitUntil("requests in flight on replica 1", () => clients.inFlight(1) > 0, 30_000, 1);
      replicas.freeze(1);
      freezes++;
      const before = clients.countOps();
      await sleep(FREEZE_MS);
      // The others carry on meanwhile: the frozen replica's pools are not blocked for good.
      replicas.thaw(1);
      await waitUntil("traffic after the thaw", () => clients.countOps() >= before + 150);
    } while (replicas.count(LOG_PATTERNS.staleLock) === 0 && freezes < 3);
    // Any lost attempt may have been carried out late by the thawed replica.
    const result = await run.finish({ landsLate: (attempt) => attempt.result === "lost" });
    report("replica SIGSTOP", result, replicas, { freezes });

    expect(result.violations).toEqual([]);
    expect(replicas.exits()).toEqual([]);
    expect(result.figures.allocations).toBeGreaterThan(0);
  });
});
