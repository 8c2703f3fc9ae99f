import { describe, expect, it } from "vitest";
import { MAX_DELIVERY_ATTEMPTS, retryDelayMs, RETRY_SCHEDULE_MS } from "./webhook.backoff.js";

// SPEC L15: retried with backoff, then sent to the dead-letter list after the last try.
describe("retryDelayMs", () => {
  const seconds = [10, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600];

  it("follows the schedule 10 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h without jitter at the midpoint", () => {
    expect(RETRY_SCHEDULE_MS.map((ms) => ms / 1000)).toEqual(seconds);
    expect(seconds.map((_, i) => retryDelayMs(i + 1, () => 0.5) / 1000)).toEqual(seconds);
  });

  it("jitters each wait by at most 10% either way", () => {
    seconds.forEach((s, i) => {
      expect(retryDelayMs(i + 1, () => 0)).toBe(s * 900);
      expect(retryDelayMs(i + 1, () => 0.999999)).toBeLessThanOrEqual(s * 1100);
      expect(retryDelayMs(i + 1, () => 0.999999)).toBeGreaterThan(s * 1099);
    });
    for (let i = 0; i < 1000; i++) {
      const delay = retryDelayMs(1);
      expect(delay).toBeGreaterThanOrEqual(9_000);
      expect(delay).toBeLessThanOrEqual(11_000);
    }
  });

  it("caps later waits at 6 h and refuses a count below 1", () => {
    expect(retryDelayMs(20, () => 0.5)).toBe(6 * 3600 * 1000);
    expect(() => retryDelayMs(0)).toThrow(RangeError);
    expect(() => retryDelayMs(1.5)).toThrow(RangeError);
  });

  it("gives a delivery 8 attempts", () => {
    expect(MAX_DELIVERY_ATTEMPTS).toBe(8);
  });
});
