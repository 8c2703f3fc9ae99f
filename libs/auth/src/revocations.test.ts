import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { TEST_REDIS_URL } from "../../../test/support/env.js";
import { createRedisRevocationList } from "./revocations.js";

const opened: Redis[] = [];
const prefixes: string[] = [];

async function connect(): Promise<Redis> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  opened.push(redis);
  if (redis.status !== "ready") await once(redis, "ready");
  return redis;
}

/** A revocation list on the real Redis, under a key prefix no other test shares. */
async function revocationList(prefix = `cls-test-revoked:${randomBytes(6).toString("hex")}:`) {
  prefixes.push(prefix);
  const redis = await connect();
  return { redis, prefix, list: createRedisRevocationList(redis, { ttlMs: 60_000, prefix }) };
}

/**
 * Every command Redis executes that names a key under `prefix`, seen through MONITOR.
 * `settled` waits until Redis has reported all commands sent before it was called.
 */
async function watchCommands(prefix: string) {
  const monitor = await (await connect()).monitor();
  opened.push(monitor);
  const seen: string[][] = [];
  monitor.on("monitor", (_time: string, args: string[]) => {
    if (args.some((arg) => arg.startsWith(prefix))) seen.push(args);
  });
  const marker = `${prefix}end-of-watch`;
  return {
    async settled(redis: Redis): Promise<string[][]> {
      await redis.exists(marker);
      while (!seen.some((args) => args.includes(marker))) await new Promise((resolve) => setTimeout(resolve, 5));
      return seen.filter((args) => !args.includes(marker));
    },
  };
}

afterEach(async () => {
  const cleaner = await connect();
  for (const prefix of prefixes.splice(0)) {
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
  }
  for (const redis of opened.splice(0)) redis.disconnect();
});

describe("Redis revocation list", () => {
  it("answers many concurrent checks correctly with far fewer Redis commands than checks", async () => {
    const { redis, prefix, list } = await revocationList();
    const subjects = Array.from({ length: 100 }, (_, i) => `server:srv_${i}`);
    const revoked = new Set(subjects.filter((_, i) => i % 7 === 0));
    for (const subject of revoked) await list.revoke(subject);
    const watch = await watchCommands(prefix);

    const checks = Array.from({ length: 600 }, (_, i) => subjects[(i * 37) % subjects.length]!);
    const answers = await Promise.all(checks.map((subject) => list.isRevoked(subject)));

    expect(answers).toEqual(checks.map((subject) => revoked.has(subject)));
    const commands = await watch.settled(redis);
    // The first two checks go at once, one each; the other 598 wait and go in batches of at most 256.
    expect(commands.length).toBeLessThanOrEqual(5);
    expect(commands.length).toBeLessThan(checks.length);
  });

  it("sees a revocation written just before the check, from another replica, while checks are in flight", async () => {
    const { list, prefix } = await revocationList();
    const otherReplica = (await revocationList(prefix)).list;
    const subject = "apikey:key_late";
    const others = Array.from({ length: 50 }, (_, i) => `server:srv_${i}`);
    // Checks of the subject asked for before the revocation, some already sent: none may answer for a later check.
    const before = others.flatMap((other) => [list.isRevoked(subject), list.isRevoked(other)]);

    await otherReplica.revoke(subject);
    const after = list.isRevoked(subject);

    expect(await after).toBe(true);
    expect((await Promise.all(before)).filter((_, i) => i % 2 === 1)).toEqual(others.map(() => false));
    expect(await list.isRevoked(subject)).toBe(true);
  });

  it("rejects every check of a batch when Redis fails, then answers again once Redis is back", async () => {
    const { redis, list } = await revocationList();
    await list.revoke("server:srv_revoked");
    // The first two checks are sent at once; the three after them wait and go as one batch, on a closed connection.
    const sent = [list.isRevoked("server:srv_revoked"), list.isRevoked("server:srv_a")];
    const batch = ["server:srv_revoked", "server:srv_b", "server:srv_c"].map((subject) => list.isRevoked(subject));
    redis.disconnect();

    const outcomes = await Promise.allSettled(batch);
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", "rejected", "rejected"]);
    // Those already on the wire may or may not be answered before the connection closes; never wrongly.
    const [revokedEarly, otherEarly] = await Promise.allSettled(sent);
    if (revokedEarly!.status === "fulfilled") expect(revokedEarly!.value).toBe(true);
    if (otherEarly!.status === "fulfilled") expect(otherEarly!.value).toBe(false);

    await redis.connect();
    expect(await Promise.all([list.isRevoked("server:srv_revoked"), list.isRevoked("server:srv_a")])).toEqual([true, false]);
  });

  it("revokes only the named subject", async () => {
    const { list } = await revocationList();
    await list.revoke("server:srv_1");
    expect(await list.isRevoked("server:srv_1")).toBe(true);
    expect(await list.isRevoked("server:srv_10")).toBe(false);
    expect(await list.isRevoked("apikey:srv_1")).toBe(false);
  });
});
