interface Waiting<V> {
  key: string;
  resolve(value: V): void;
  reject(error: unknown): void;
}

/**
 * Answers single-key lookups with as few requests as possible, without ever delaying one:
 * a lookup asked for while a request slot is free is sent at once; those asked for while
 * every slot is busy wait together and go as one request (up to `maxBatch` of them) as soon
 * as a slot frees. A failed request rejects exactly the lookups it carried.
 *
 * `lookupMany` receives distinct keys and must answer them in the same order.
 */
export function createBatchedLookup<V>(
  lookupMany: (keys: string[]) => Promise<readonly V[]>,
  options: { maxBatch: number; maxInFlight: number },
): (key: string) => Promise<V> {
  const waiting: Waiting<V>[] = [];
  let inFlight = 0;

  function sendWhileSlotsFree(): void {
    while (inFlight < options.maxInFlight && waiting.length > 0) void send(waiting.splice(0, options.maxBatch));
  }

  async function send(batch: Waiting<V>[]): Promise<void> {
    inFlight++;
    try {
      const keys = [...new Set(batch.map((w) => w.key))];
      const values = await lookupMany(keys);
      if (values.length !== keys.length) throw new Error(`lookup answered ${values.length} of ${keys.length} keys`);
      const byKey = new Map(keys.map((key, i) => [key, values[i]!]));
      for (const w of batch) w.resolve(byKey.get(w.key)!);
    } catch (error) {
      for (const w of batch) w.reject(error);
    } finally {
      inFlight--;
      sendWhileSlotsFree();
    }
  }

  return (key) => {
    const answer = new Promise<V>((resolve, reject) => waiting.push({ key, resolve, reject }));
    sendWhileSlotsFree();
    return answer;
  };
}
