import { describe, expect, it } from "vitest";
import { DAY_MS, HOUR_MS } from "@cls/clock";
import { LEASE_LIFETIME_MS, leaseTimes, RENEW_AFTER_MS, WARN_AFTER_MS } from "./lease-times.js";

const now = new Date("2030-01-01T00:00:00Z");
const after = (ms: number) => new Date(now.getTime() + ms);

describe("leaseTimes (SPEC L9)", () => {
  it("renews after 1 day, warns after 7 and expires after 30 when the pool outlives the lease", () => {
    const times = leaseTimes(now, after(365 * DAY_MS));
    expect(times).toEqual({ issuedAt: now, renewAfter: after(DAY_MS), warnAfter: after(7 * DAY_MS), expiresAt: after(30 * DAY_MS) });
    expect([RENEW_AFTER_MS, WARN_AFTER_MS, LEASE_LIFETIME_MS]).toEqual([DAY_MS, 7 * DAY_MS, 30 * DAY_MS]);
  });

  it("caps expires_at at the pool's expiry: no lease runs past its pool (SPEC L5)", () => {
    const poolExpiry = after(10 * DAY_MS);
    const times = leaseTimes(now, poolExpiry);
    expect(times.expiresAt).toEqual(poolExpiry);
    expect(times.warnAfter).toEqual(after(7 * DAY_MS));
    expect(times.renewAfter).toEqual(after(DAY_MS));
  });

  it("caps every time when the pool expires within a day", () => {
    const poolExpiry = after(3 * HOUR_MS);
    const times = leaseTimes(now, poolExpiry);
    expect(times).toEqual({ issuedAt: now, renewAfter: poolExpiry, warnAfter: poolExpiry, expiresAt: poolExpiry });
  });

  it("never lets a time run past the pool's expiry, whatever the gap", () => {
    for (const days of [0, 1, 6, 7, 8, 29, 30, 31]) {
      const poolExpiry = after(days * DAY_MS);
      const times = leaseTimes(now, poolExpiry);
      for (const time of [times.renewAfter, times.warnAfter, times.expiresAt]) expect(time.getTime()).toBeLessThanOrEqual(poolExpiry.getTime());
      expect(times.expiresAt.getTime()).toBe(Math.min(poolExpiry.getTime(), after(30 * DAY_MS).getTime()));
    }
  });

  it("keeps exactly 30 days when the pool expires exactly then", () => {
    expect(leaseTimes(now, after(30 * DAY_MS)).expiresAt).toEqual(after(30 * DAY_MS));
  });
});
