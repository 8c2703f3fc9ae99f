import { HOUR_MS, MINUTE_MS, SECOND_MS } from "@cls/clock";

/** Attempts a delivery gets in all; after the last failure it is dead (SPEC L15). */
export const MAX_DELIVERY_ATTEMPTS = 8;

/** Wait after the 1st, 2nd, … failed attempt; the last entry is the cap for any later one. */
export const RETRY_SCHEDULE_MS: readonly number[] = [
  10 * SECOND_MS,
  30 * SECOND_MS,
  2 * MINUTE_MS,
  10 * MINUTE_MS,
  30 * MINUTE_MS,
  1 * HOUR_MS,
  3 * HOUR_MS,
  6 * HOUR_MS,
];

/** Share of a wait that is randomised either way, so retries of one outage spread out. */
export const RETRY_JITTER = 0.1;

/**
 * How long to wait before retrying after `failedAttempts` failures (1 or more): the schedule's
 * entry, ±10% jitter. `random` returns a number in [0, 1), like Math.random.
 */
export function retryDelayMs(failedAttempts: number, random: () => number = Math.random): number {
  if (!Number.isInteger(failedAttempts) || failedAttempts < 1) throw new RangeError("failedAttempts must be a whole number from 1");
  const base = RETRY_SCHEDULE_MS[Math.min(failedAttempts, RETRY_SCHEDULE_MS.length) - 1]!;
  return Math.round(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random()));
}
