import { describe, expect, it } from "vitest";
import { createBatchedLookup } from "./batched-lookup.js";

/** A `lookupMany` whose requests the test answers or fails by hand. */
function manualLookup() {
  const requests: { keys: string[]; answer(): void; fail(error: Error): void }[] = [];
  const lookupMany = (keys: string[]) =>
    new Promise<string[]>((resolve, reject) => {
      requests.push({ keys, answer: () => resolve(keys.map((k) => `value of ${k}`)), fail: reject });
    });
  return { requests, lookupMany };
}

/** Lets settled requests' continuations run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("batched lookup", () => {
  it("sends a lookup at once while a request slot is free", () => {
    const { requests, lookupMany } = manualLookup();
    const lookup = createBatchedLookup(lookupMany, { maxBatch: 10, maxInFlight: 2 });
    void lookup("a");
    expect(requests.map((r) => r.keys)).toEqual([["a"]]);
    void lookup("b");
    expect(requests.map((r) => r.keys)).toEqual([["a"], ["b"]]);
  });

  it("gathers lookups asked for while every slot is busy into one request", async () => {
    const { requests, lookupMany } = manualLookup();
    const lookup = createBatchedLookup(lookupMany, { maxBatch: 10, maxInFlight: 2 });
    const answers = ["a", "b", "c", "d", "e"].map((key) => lookup(key));
    expect(requests).toHaveLength(2);
    requests[0]!.answer();
    await settle();
    expect(requests.map((r) => r.keys)).toEqual([["a"], ["b"], ["c", "d", "e"]]);
    requests[1]!.answer();
    requests[2]!.answer();
    expect(await Promise.all(answers)).toEqual(["value of a", "value of b", "value of c", "value of d", "value of e"]);
  });

  it("never has more requests in flight than allowed, nor more keys in one than the cap", async () => {
    const { requests, lookupMany } = manualLookup();
    const lookup = createBatchedLookup(lookupMany, { maxBatch: 3, maxInFlight: 2 });
    const answers = Array.from({ length: 12 }, (_, i) => lookup(`k${i}`));
    let answered = 0;
    while (answered < requests.length) {
      expect(requests.length - answered).toBeLessThanOrEqual(2);
      requests[answered++]!.answer();
      await settle();
    }
    expect(requests.map((r) => r.keys.length)).toEqual([1, 1, 3, 3, 3, 1]);
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 12 }, (_, i) => `value of k${i}`));
  });

  it("asks for a key once per request and gives its answer to every lookup of it", async () => {
    const { requests, lookupMany } = manualLookup();
    const lookup = createBatchedLookup(lookupMany, { maxBatch: 10, maxInFlight: 1 });
    const first = lookup("a");
    const answers = ["b", "a", "b", "b"].map((key) => lookup(key));
    requests[0]!.answer();
    await settle();
    expect(requests.map((r) => r.keys)).toEqual([["a"], ["b", "a"]]);
    requests[1]!.answer();
    expect(await first).toBe("value of a");
    expect(await Promise.all(answers)).toEqual(["value of b", "value of a", "value of b", "value of b"]);
  });

  it("rejects exactly the lookups of a failed request, and carries on", async () => {
    const { requests, lookupMany } = manualLookup();
    const lookup = createBatchedLookup(lookupMany, { maxBatch: 10, maxInFlight: 2 });
    const a = lookup("a");
    const b = lookup("b");
    const waiting = [lookup("c"), lookup("d")];
    requests[0]!.fail(new Error("store down"));
    await expect(a).rejects.toThrow("store down");
    await settle();
    requests[1]!.answer();
    expect(await b).toBe("value of b");
    requests[2]!.fail(new Error("store still down"));
    for (const answer of waiting) await expect(answer).rejects.toThrow("store still down");
    const later = lookup("e");
    requests[3]!.answer();
    expect(await later).toBe("value of e");
  });

  it("rejects when the lookup throws before answering, or answers the wrong number of keys", async () => {
    const throwing = createBatchedLookup<string>(
      () => {
        throw new Error("no connection");
      },
      { maxBatch: 10, maxInFlight: 2 },
    );
    await expect(throwing("a")).rejects.toThrow("no connection");
    const short = createBatchedLookup(async () => [], { maxBatch: 10, maxInFlight: 2 });
    await expect(short("a")).rejects.toThrow("lookup answered 0 of 1 keys");
  });
});
