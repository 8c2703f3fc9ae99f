import { describe, expect, it } from "vitest";
import { thresholdsCrossed, USAGE_THRESHOLDS_PERCENT } from "./usage-thresholds.js";

const crossed = (capacity: number, usedBefore: number, usedAfter: number) => thresholdsCrossed({ capacity, usedBefore, usedAfter });

describe("thresholdsCrossed (SPEC L15: a pool's use crossing 80% and 100%)", () => {
  it("notifies at 80% and 100%", () => {
    expect(USAGE_THRESHOLDS_PERCENT).toEqual([80, 100]);
  });

  it("capacity 10: 8 crosses 80%, 10 crosses 100%, nothing in between", () => {
    expect(crossed(10, 6, 7)).toEqual([]);
    expect(crossed(10, 7, 8)).toEqual([80]);
    expect(crossed(10, 8, 9)).toEqual([]);
    expect(crossed(10, 9, 10)).toEqual([100]);
  });

  it("capacity 5: 4 crosses 80%, 5 crosses 100%", () => {
    expect(crossed(5, 2, 3)).toEqual([]);
    expect(crossed(5, 3, 4)).toEqual([80]);
    expect(crossed(5, 4, 5)).toEqual([100]);
  });

  it("capacity 1: the first licence crosses both at once, lowest first", () => {
    expect(crossed(1, 0, 1)).toEqual([80, 100]);
  });

  it("a batch that jumps over both thresholds reports both", () => {
    expect(crossed(10, 0, 10)).toEqual([80, 100]);
    expect(crossed(10, 5, 9)).toEqual([80]);
  });

  it("capacity 3: 80% of 3 is 2.4, so the third licence crosses both", () => {
    expect(crossed(3, 1, 2)).toEqual([]);
    expect(crossed(3, 2, 3)).toEqual([80, 100]);
  });

  it("reports no crossing when use was already above the threshold", () => {
    expect(crossed(10, 8, 9)).toEqual([]);
    expect(crossed(10, 10, 11)).toEqual([]);
    // After a lowered count (SPEC L4) use can sit above capacity: no new crossing.
    expect(crossed(5, 7, 8)).toEqual([]);
  });

  it("reports nothing for a pool with no licences of the type", () => {
    expect(crossed(0, 0, 0)).toEqual([]);
  });
});
