import type { HeldLock, LockService } from "./lock.js";

/**
 * Locks for a single process (the embedded default, without Redis). Fences count per key
 * from the process start; Postgres still refuses any over-allocation on its own.
 */
export function createInProcessLockService(): LockService {
  const tails = new Map<string, Promise<void>>();
  const fences = new Map<string, number>();

  return {
    async acquire(key, { waitMs }) {
      const previous = tails.get(key) ?? Promise.resolve();
      let releaseSlot!: () => void;
      const slot = new Promise<void>((resolve) => (releaseSlot = resolve));
      const tail = previous.then(() => slot);
      tails.set(key, tail);
      let timer: NodeJS.Timeout | undefined;
      const gotIt = await Promise.race([
        previous.then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), waitMs))),
      ]);
      clearTimeout(timer);
      if (!gotIt) {
        // Leave our place in the queue so that later waiters are not held up by us.
        releaseSlot();
        return null;
      }
      const fence = (fences.get(key) ?? 0) + 1;
      fences.set(key, fence);
      let released = false;
      return {
        key,
        fence,
        async release() {
          if (released) return "expired";
          released = true;
          releaseSlot();
          if (tails.get(key) === tail) tails.delete(key);
          return "released";
        },
      } satisfies HeldLock;
    },
    async advanceFence(key, seen) {
      if ((fences.get(key) ?? 0) < seen) fences.set(key, seen);
    },
    async close() {},
  };
}
