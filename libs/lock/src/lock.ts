/** A held lock. `fence` increases with every acquisition of the same key, across restarts of the holder. */
export interface HeldLock {
  readonly key: string;
  readonly fence: number;
  /** Gives the lock back. Reports whether it was still ours. */
  release(): Promise<ReleaseOutcome>;
}

/**
 * - released: we held it and gave it back;
 * - expired: its time ran out and nobody holds it now;
 * - taken_over: its time ran out and another holder has it now.
 */
export type ReleaseOutcome = "released" | "expired" | "taken_over";

export interface LockService {
  /**
   * Waits up to `waitMs` for the lock on `key`, held for at most `ttlMs`.
   * Returns null when the wait ran out. Throws when the lock store is unreachable.
   */
  acquire(key: string, options: { ttlMs: number; waitMs: number }): Promise<HeldLock | null>;
  /**
   * Makes the next fence for `key` larger than `seen`. Called when Postgres holds a
   * fence newer than the store's counter (the store lost its data).
   */
  advanceFence(key: string, seen: number): Promise<void>;
  close(): Promise<void>;
}
