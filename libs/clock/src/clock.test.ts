import { describe, expect, it } from "vitest";
import { DAY_MS, HOUR_MS, MINUTE_MS, ManualClock, SECOND_MS, systemClock } from "./index.js";

describe("ManualClock", () => {
  it("stays put until advanced or set", () => {
    const start = new Date("2026-01-01T00:00:00Z");
    const clock = new ManualClock(start);
    expect(clock.now()).toEqual(start);
    expect(clock.now()).toEqual(start);
    clock.advance(DAY_MS + 1);
    expect(clock.now()).toEqual(new Date("2026-01-02T00:00:00.001Z"));
    clock.set(new Date("2030-06-01T12:00:00Z"));
    expect(clock.now()).toEqual(new Date("2030-06-01T12:00:00Z"));
  });

  it("hands out copies, so a caller cannot move the clock by mutating a Date", () => {
    const clock = new ManualClock(new Date("2026-01-01T00:00:00Z"));
    clock.now().setUTCFullYear(1999);
    expect(clock.now()).toEqual(new Date("2026-01-01T00:00:00Z"));
  });

  it("is not moved by changes to the Date it started from", () => {
    const start = new Date("2026-01-01T00:00:00Z");
    const clock = new ManualClock(start);
    start.setUTCFullYear(1999);
    expect(clock.now()).toEqual(new Date("2026-01-01T00:00:00Z"));
  });
});

describe("systemClock", () => {
  it("follows the wall clock, shifted by its offset", () => {
    const before = Date.now();
    const plain = systemClock().now().getTime();
    const ahead = systemClock(DAY_MS).now().getTime();
    const after = Date.now();
    expect(plain).toBeGreaterThanOrEqual(before);
    expect(plain).toBeLessThanOrEqual(after);
    expect(ahead).toBeGreaterThanOrEqual(before + DAY_MS);
    expect(ahead).toBeLessThanOrEqual(after + DAY_MS);
  });
});

describe("durations", () => {
  it("are consistent", () => {
    expect([SECOND_MS, MINUTE_MS, HOUR_MS, DAY_MS]).toEqual([1_000, 60_000, 3_600_000, 86_400_000]);
  });
});
