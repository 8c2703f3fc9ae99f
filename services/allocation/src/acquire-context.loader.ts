import type { AcquireContext, AcquireContextKey } from "./acquire-context.repository.js";

/** Most acquires one pre-read query answers; more wait for the next one. */
const MAX_BATCH = 256;
/** Pre-read queries running at once; calls arriving while both run wait and go together. */
const MAX_IN_FLIGHT = 2;

/** Reads the contexts of several acquires at once, one per key, in the keys' order. */
export type ReadAcquireContexts = (keys: readonly AcquireContextKey[]) => Promise<AcquireContext[]>;

interface Pending {
  key: AcquireContextKey;
  resolve(context: AcquireContext): void;
  reject(error: unknown): void;
}

/**
 * Shares the acquire pre-read between the acquires waiting at the same moment: a call goes
 * at once when a query slot is free, and otherwise joins the next query, as the pool
 * allocator's batches do. A failed query fails every call it carried, with its error.
 */
export function createAcquireContextLoader(read: ReadAcquireContexts) {
  const pending: Pending[] = [];
  let inFlight = 0;

  function load(key: AcquireContextKey): Promise<AcquireContext> {
    const promise = new Promise<AcquireContext>((resolve, reject) => pending.push({ key, resolve, reject }));
    if (inFlight < MAX_IN_FLIGHT) void drain();
    return promise;
  }

  async function drain(): Promise<void> {
    inFlight++;
    try {
      while (pending.length > 0) {
        const batch = pending.splice(0, MAX_BATCH);
        try {
          const contexts = await read(batch.map((p) => p.key));
          batch.forEach((p, i) => p.resolve(contexts[i]!));
        } catch (error) {
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      inFlight--;
    }
  }

  return { load };
}

export type AcquireContextLoader = ReturnType<typeof createAcquireContextLoader>;
