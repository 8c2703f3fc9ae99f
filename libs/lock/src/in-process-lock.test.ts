import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createInProcessLockService } from "./in-process-lock.js";
import type { HeldLock } from "./lock.js";

const opts = { ttlMs: 10_000, waitMs: 10_000 };

describe("in-process lock service", () => {
  it("hands out increasing fences per key", async () => {
    const locks = createInProcessLockService();
    const fences: number[] = [];
    for (let i = 0; i < 4; i++) {
      const held = await locks.acquire("a", opts);
      fences.push(held!.fence);
      expect(await held!.release()).toBe("released");
    }
    const other = await locks.acquire("b", opts);
    expect(fences).toEqual([1, 2, 3, 4]);
    expect(other!.fence).toBe(1);
    await other!.release();
  });

  it("lets keys be held independently", async () => {
    const locks = createInProcessLockService();
    const a = await locks.acquire("a", opts);
    const b = await locks.acquire("b", { ttlMs: 1_000, waitMs: 0 });
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    await a!.release();
    await b!.release();
  });

  it("never lets two of many concurrent acquirers into the critical section at once", async () => {
    const locks = createInProcessLockService();
    let inside = false;
    let overlaps = 0;
    const fences: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const held = await locks.acquire("hot", opts);
        if (!held) throw new Error("acquirer timed out");
        if (inside) overlaps++;
        inside = true;
        fences.push(held.fence);
        await sleep(i % 3);
        inside = false;
        await held.release();
      }),
    );
    expect(overlaps).toBe(0);
    expect(fences).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it("returns null when the wait runs out, without taking a fence", async () => {
    const locks = createInProcessLockService();
    const holder = await locks.acquire("k", opts);
    expect(await locks.acquire("k", { ttlMs: 1_000, waitMs: 20 })).toBeNull();
    await holder!.release();
    const next = await locks.acquire("k", opts);
    expect(next!.fence).toBe(holder!.fence + 1);
    await next!.release();
  });

  it("does not hold up later waiters after a timed-out one", async () => {
    const locks = createInProcessLockService();
    const holder = await locks.acquire("k", opts);
    // B queues behind the holder and gives up; C queues behind B and waits long.
    const b = locks.acquire("k", { ttlMs: 1_000, waitMs: 20 });
    let cGot: HeldLock | null | undefined;
    const c = locks.acquire("k", opts).then((held) => (cGot = held));
    expect(await b).toBeNull();
    expect(cGot).toBeUndefined();
    await holder!.release();
    const held = await c;
    expect(held).not.toBeNull();
    expect(held!.fence).toBe(holder!.fence + 1);
    await held!.release();
    // And once everyone is gone, the key is free at once.
    const later = await locks.acquire("k", { ttlMs: 1_000, waitMs: 0 });
    expect(later).not.toBeNull();
    await later!.release();
  });

  it("a timed-out waiter whose predecessor released meanwhile does not block anyone", async () => {
    const locks = createInProcessLockService();
    const holder = await locks.acquire("k", opts);
    expect(await locks.acquire("k", { ttlMs: 1_000, waitMs: 10 })).toBeNull();
    expect(await locks.acquire("k", { ttlMs: 1_000, waitMs: 10 })).toBeNull();
    await holder!.release();
    const next = await locks.acquire("k", { ttlMs: 1_000, waitMs: 1_000 });
    expect(next).not.toBeNull();
    await next!.release();
  });

  it("a second release does not free the next holder's lock", async () => {
    const locks = createInProcessLockService();
    const first = await locks.acquire("k", opts);
    expect(await first!.release()).toBe("released");
    const second = await locks.acquire("k", opts);
    expect(await first!.release()).not.toBe("released");
    expect(await locks.acquire("k", { ttlMs: 1_000, waitMs: 20 })).toBeNull();
    expect(await second!.release()).toBe("released");
  });

  it("advanceFence makes the next fence larger than what was seen and never lowers it", async () => {
    const locks = createInProcessLockService();
    await locks.advanceFence("k", 100);
    const first = await locks.acquire("k", opts);
    expect(first!.fence).toBeGreaterThan(100);
    await first!.release();
    await locks.advanceFence("k", 3);
    const second = await locks.acquire("k", opts);
    expect(second!.fence).toBeGreaterThan(first!.fence);
    await second!.release();
  });
});
