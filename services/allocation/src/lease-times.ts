import { DAY_MS } from "@cls/clock";

export const RENEW_AFTER_MS = 1 * DAY_MS;
export const WARN_AFTER_MS = 7 * DAY_MS;
export const LEASE_LIFETIME_MS = 30 * DAY_MS;

export interface LeaseTimes {
  issuedAt: Date;
  renewAfter: Date;
  warnAfter: Date;
  expiresAt: Date;
}

/** A lease's times (SPEC L9): renew after a day, warn after 7, lapse after 30, never past the pool's expiry. */
export function leaseTimes(now: Date, poolExpiresAt: Date): LeaseTimes {
  const at = (offsetMs: number) => new Date(Math.min(now.getTime() + offsetMs, poolExpiresAt.getTime()));
  return {
    issuedAt: now,
    renewAfter: at(RENEW_AFTER_MS),
    warnAfter: at(WARN_AFTER_MS),
    expiresAt: at(LEASE_LIFETIME_MS),
  };
}
