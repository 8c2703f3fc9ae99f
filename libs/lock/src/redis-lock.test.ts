import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_REDIS_URL } from "../../../test/support/env.js";
import type { HeldLock } from "./lock.js";
import { createRedisLockService } from "./redis-lock.js";

type RedisLocks = ReturnType<typeof createRedisLockService> & { prefix: string };
const opened: RedisLocks[] = [];

/** A lock service on the real Redis with a key prefix no other test shares. */
async function locks(prefix = `cls-test-lock:${randomBytes(6).toString("hex")}:`): Promise<RedisLocks> {
  const service = Object.assign(createRedisLockService({ url: TEST_REDIS_URL, prefix }), { prefix });
  opened.push(service);
  // The service fails fast (no offline queue) until its connection is up.
  if (service.redis.status !== "ready") await once(service.redis, "ready");
  return service;
}

afterEach(async () => {
  for (const service of opened.splice(0)) {
    const keys = await service.redis.keys(`${service.prefix}*`).catch(() => [] as string[]);
    if (keys.length > 0) await service.redis.del(...keys).catch(() => 0);
    await service.close();
  }
});

/** Waits until the lock's PX time has certainly run out in Redis. */
async function waitForExpiry(service: RedisLocks, key: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await service.redis.exists(`${service.prefix}${key}`)) === 0) return;
    await sleep(10);
  }
  throw new Error(`lock ${key} never expired`);
}

describe("Redis lock service", () => {
  it("hands out increasing fences for the same key", async () => {
    const service = await locks();
    const fences: number[] = [];
    for (let i = 0; i < 5; i++) {
      const held = await service.acquire("pool:a", { ttlMs: 5_000, waitMs: 1_000 });
      expect(held).not.toBeNull();
      expect(held!.key).toBe("pool:a");
      fences.push(held!.fence);
      expect(await held!.release()).toBe("released");
    }
    expect(fences).toEqual([1, 2, 3, 4, 5]);
  });

  it("counts fences per key", async () => {
    const service = await locks();
    const a = await service.acquire("a", { ttlMs: 5_000, waitMs: 0 });
    const b = await service.acquire("b", { ttlMs: 5_000, waitMs: 0 });
    expect(a?.fence).toBe(1);
    expect(b?.fence).toBe(1);
    await a!.release();
    await b!.release();
  });

  it("gives a second acquirer null when its wait runs out while the lock is held", async () => {
    const service = await locks();
    const first = await service.acquire("k", { ttlMs: 10_000, waitMs: 0 });
    expect(first).not.toBeNull();
    const second = await service.acquire("k", { ttlMs: 10_000, waitMs: 50 });
    expect(second).toBeNull();
    // The failed attempt took no fence and did not disturb the holder.
    expect(await first!.release()).toBe("released");
    const third = await service.acquire("k", { ttlMs: 10_000, waitMs: 0 });
    expect(third?.fence).toBe(first!.fence + 1);
    await third!.release();
  });

  it("lets a waiting acquirer in once the holder releases", async () => {
    const service = await locks();
    const first = await service.acquire("k", { ttlMs: 10_000, waitMs: 0 });
    let secondGot: HeldLock | null | undefined;
    const waiting = service.acquire("k", { ttlMs: 10_000, waitMs: 10_000 }).then((held) => (secondGot = held));
    await sleep(30);
    expect(secondGot).toBeUndefined();
    expect(await first!.release()).toBe("released");
    const second = await waiting;
    expect(second).not.toBeNull();
    expect(second!.fence).toBeGreaterThan(first!.fence);
    expect(await second!.release()).toBe("released");
  });

  it("reports 'expired' when the TTL ran out and nobody holds the lock", async () => {
    const service = await locks();
    const held = await service.acquire("k", { ttlMs: 50, waitMs: 0 });
    expect(held).not.toBeNull();
    await waitForExpiry(service, "k");
    expect(await held!.release()).toBe("expired");
  });

  it("reports 'taken_over' when the TTL ran out and someone else took the lock, and leaves theirs alone", async () => {
    const service = await locks();
    const stale = await service.acquire("k", { ttlMs: 50, waitMs: 0 });
    const usurper = await service.acquire("k", { ttlMs: 10_000, waitMs: 5_000 });
    expect(usurper).not.toBeNull();
    expect(usurper!.fence).toBeGreaterThan(stale!.fence);
    expect(await stale!.release()).toBe("taken_over");
    // The stale release did not delete the new holder's lock.
    expect(await service.acquire("k", { ttlMs: 10_000, waitMs: 30 })).toBeNull();
    expect(await usurper!.release()).toBe("released");
  });

  it("does not let a holder that already released remove the next holder's lock", async () => {
    const service = await locks();
    const first = await service.acquire("k", { ttlMs: 10_000, waitMs: 0 });
    expect(await first!.release()).toBe("released");
    const second = await service.acquire("k", { ttlMs: 10_000, waitMs: 0 });
    expect(await first!.release()).toBe("taken_over");
    expect(await service.acquire("k", { ttlMs: 10_000, waitMs: 30 })).toBeNull();
    expect(await second!.release()).toBe("released");
  });

  it("keeps the fence counter across lock expiry, and the counter key never expires", async () => {
    const service = await locks();
    const first = await service.acquire("k", { ttlMs: 50, waitMs: 0 });
    await waitForExpiry(service, "k");
    const second = await service.acquire("k", { ttlMs: 50, waitMs: 0 });
    expect(second!.fence).toBe(first!.fence + 1);
    expect(await service.redis.pttl(`${service.prefix}fence:k`)).toBe(-1);
    await second!.release();
  });

  it("keeps fences increasing across lock service instances (a restarted holder)", async () => {
    const prefix = `cls-test-lock:${randomBytes(6).toString("hex")}:`;
    const before = await locks(prefix);
    const first = await before.acquire("k", { ttlMs: 5_000, waitMs: 0 });
    await first!.release();
    const after = await locks(prefix);
    const second = await after.acquire("k", { ttlMs: 5_000, waitMs: 0 });
    expect(second!.fence).toBeGreaterThan(first!.fence);
    await second!.release();
  });

  it("advanceFence makes the next fence larger than what was seen and never lowers it", async () => {
    const service = await locks();
    const first = await service.acquire("k", { ttlMs: 5_000, waitMs: 0 });
    expect(first!.fence).toBe(1);
    await first!.release();

    await service.advanceFence("k", 1_000);
    const second = await service.acquire("k", { ttlMs: 5_000, waitMs: 0 });
    expect(second!.fence).toBeGreaterThan(1_000);
    await second!.release();

    await service.advanceFence("k", 5);
    const third = await service.acquire("k", { ttlMs: 5_000, waitMs: 0 });
    expect(third!.fence).toBeGreaterThan(second!.fence);
    await third!.release();
  });

  it("advanceFence works on a key that has never been locked", async () => {
    const service = await locks();
    await service.advanceFence("fresh", 41);
    const held = await service.acquire("fresh", { ttlMs: 5_000, waitMs: 0 });
    expect(held!.fence).toBeGreaterThan(41);
    await held!.release();
  });

  it("never lets two of many concurrent acquirers into the critical section at once", async () => {
    const service = await locks();
    // Two clients, as two replicas would have.
    const other = await locks(service.prefix);
    let inside = false;
    let overlaps = 0;
    let entries = 0;
    const fences: number[] = [];
    const worker = async (index: number) => {
      const lockService = index % 2 === 0 ? service : other;
      const held = await lockService.acquire("hot", { ttlMs: 10_000, waitMs: 20_000 });
      if (!held) throw new Error("acquirer timed out");
      if (inside) overlaps++;
      inside = true;
      entries++;
      fences.push(held.fence);
      await sleep(2);
      inside = false;
      expect(await held.release()).toBe("released");
    };
    await Promise.all(Array.from({ length: 30 }, (_, i) => worker(i)));
    expect(overlaps).toBe(0);
    expect(entries).toBe(30);
    // Fences are unique and increase in the order the lock was held.
    expect(fences).toEqual([...fences].sort((a, b) => a - b));
    expect(new Set(fences).size).toBe(30);
  });

  it("throws (rather than returning null) when Redis cannot be reached", async () => {
    const service = createRedisLockService({ url: "redis://127.0.0.1:1", prefix: "unreachable:" });
    try {
      await expect(service.acquire("k", { ttlMs: 1_000, waitMs: 100 })).rejects.toThrow();
      await expect(service.advanceFence("k", 1)).rejects.toThrow();
    } finally {
      await service.close();
    }
  });
});
