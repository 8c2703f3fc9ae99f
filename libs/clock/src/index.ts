/** Where every service gets the current time. Tests pass a ManualClock to move through days. */
export interface Clock {
  now(): Date;
}

/** The wall clock, shifted by a fixed offset (zero in production). */
export function systemClock(offsetMs = 0): Clock {
  return { now: () => new Date(Date.now() + offsetMs) };
}

/** A clock that only moves when told to; shared by every service in a test. */
export class ManualClock implements Clock {
  #nowMs: number;

  constructor(start: Date = new Date()) {
    this.#nowMs = start.getTime();
  }

  now(): Date {
    return new Date(this.#nowMs);
  }

  advance(ms: number): void {
    this.#nowMs += ms;
  }

  set(to: Date): void {
    this.#nowMs = to.getTime();
  }
}

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
