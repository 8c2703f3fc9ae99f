import { describe, expect, it } from "vitest";
import { checkHistory } from "./support/checker.js";
import type { AllocationRecord, UsageRecord } from "./support/database-state.js";
import type { Attempt, Op, Outcome } from "./support/history.js";
import type { SampleReport } from "./support/sampler.js";

// The fault suite is only as good as its checker: each breach it must catch, caught here on a made-up history.

const CAM = "srv_a/enc-1/cam-0";
const POOL = "pool_a";
let clock = 1_000;

function op(kind: Op["kind"], outcome: Outcome, attempts: Attempt["result"][] = ["answered"], code = "Unavailable"): Op {
  const startedAt = (clock += 10);
  return {
    id: `r${clock}`,
    client: 0,
    camera: CAM,
    kind,
    startedAt,
    endedAt: startedAt + 5,
    attempts: attempts.map((result, i) => ({ replica: i % 3, startedAt: startedAt + i, endedAt: startedAt + i + 1, result, ...(result === "lost" ? { code } : {}) })),
    outcome,
  };
}
const granted = (allocationId: string): Outcome => ({ type: "granted", allocationId, poolId: POOL });
const row = (allocation_id: string, state = "active", acquiredAt = 0): AllocationRecord => ({
  allocation_id,
  pool_id: POOL,
  licence_type: "edgevis-camera",
  camera: CAM,
  state,
  end_reason: state === "active" ? null : state,
  acquired_at: new Date(acquiredAt),
});
const usage = (capacity: number, used: number, active: number): UsageRecord => ({ pool_id: POOL, licence_type: "edgevis-camera", capacity, used, fence: 0, active });
const noSamples: SampleReport = { samples: 0, failed: 0, violations: [] };

function check(history: Op[], allocations: AllocationRecord[], usageRows = [usage(2, allocations.filter((r) => r.state === "active").length, allocations.filter((r) => r.state === "active").length)], samples = noSamples) {
  return checkHistory({ history, allocations, usage: usageRows, samples, capacities: new Map([[CAM, 2]]), landsLate: (a) => a.result === "lost" && a.code === "DeadlineExceeded" });
}

describe("fault-suite checker", () => {
  it("accepts a consistent history: grant, idempotent repeat, release, refusal, grant", () => {
    const history = [
      op("acquire", granted("alc_1")),
      op("acquire", granted("alc_1")),
      op("release", { type: "released", released: true }),
      op("acquire", { type: "refused", code: "ResourceExhausted", message: "full", total: 2, used: 2 }),
      op("acquire", granted("alc_2")),
    ];
    const result = check(history, [row("alc_1", "released"), row("alc_2")]);
    expect(result.violations).toEqual([]);
    expect(result.figures).toMatchObject({ ops: 5, grants: 3, allocations: 2, repeats: 1, refusals: 1, releases: 1 });
  });

  it("catches a second allocation for a camera that released nothing", () => {
    const history = [op("acquire", granted("alc_1")), op("acquire", granted("alc_2"), ["lost", "answered"])];
    const result = check(history, [row("alc_1", "released"), row("alc_2")]);
    expect(result.violations.join("\n")).toMatch(/second allocation alc_2 while it held alc_1/);
    expect(result.violations.join("\n")).toMatch(/1 allocations ended, but at most 0 releases/);
  });

  it("catches an acknowledged allocation missing from the table", () => {
    const result = check([op("acquire", granted("alc_1"))], []);
    expect(result.violations.join("\n")).toMatch(/granted alc_1, which is not in the allocations table/);
  });

  it("catches an acknowledged allocation that ended without a release", () => {
    const result = check([op("acquire", granted("alc_1"))], [row("alc_1", "released")]);
    expect(result.violations.join("\n")).toMatch(/at most 0 releases/);
    expect(result.violations.join("\n")).toMatch(/last granted alc_1, never released, but the active allocation is none/);
  });

  it("catches over-allocation and a drifting used count, at the end and in samples", () => {
    const result = check([], [], [usage(2, 2, 3), usage(2, 1, 2)], { samples: 5, failed: 0, violations: ["sample 3: 3 active, capacity 2"] });
    expect(result.violations).toEqual([
      "pool pool_a/edgevis-camera: 3 active allocations, capacity 2",
      "pool pool_a/edgevis-camera: used=2 but 3 active allocations",
      "pool pool_a/edgevis-camera: used=1 but 2 active allocations",
      "during the run, sample 3: 3 active, capacity 2",
    ]);
  });

  it("catches allocations no lost attempt can explain", () => {
    const result = check([op("acquire", granted("alc_2"))], [row("alc_1", "released"), row("alc_2")]);
    expect(result.violations.join("\n")).toMatch(/1 allocations no client was told of, but only 0 acquire attempts were lost/);
  });

  it("catches a refusal for a camera that holds a licence, and wrong refusal details", () => {
    const history = [op("acquire", granted("alc_1")), op("acquire", { type: "refused", code: "ResourceExhausted", message: "full", total: 3, used: 3 })];
    const result = check(history, [row("alc_1")]);
    expect(result.violations.join("\n")).toMatch(/refused although the camera held alc_1/);
    expect(result.violations.join("\n")).toMatch(/total=3 used=3, capacity is 2/);
  });

  it("counts a retry that got the allocation its lost attempt committed, and accepts it", () => {
    const first = op("acquire", granted("alc_1"), ["lost", "answered"]);
    const result = check([first], [row("alc_1", "active", first.startedAt)]);
    expect(result.violations).toEqual([]);
    expect(result.figures.retryReturnedCommitted).toBe(1);
  });

  it("allows a late-landing lost attempt's allocation, checking that camera against the table only", () => {
    const history = [
      op("acquire", granted("alc_1"), ["lost", "answered"], "DeadlineExceeded"),
      op("release", { type: "released", released: true }),
    ];
    // The timed-out first attempt ran later, after the release, and took a licence.
    const result = check(history, [row("alc_1", "released"), row("alc_ghost")]);
    expect(result.violations).toEqual([]);
    expect(result.figures).toMatchObject({ unacknowledged: 1, tainted: 1 });
  });
});
