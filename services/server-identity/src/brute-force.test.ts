import { randomBytes, sign } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "@cls/db";
import { ResourceExhaustedError } from "@cls/errors";
import { TEST_REDIS_URL } from "../../../test/support/env.js";
import { parseApiKey } from "./api-key.js";
import { createBruteForceGuard, type BruteForceGuard } from "./brute-force.js";
import { newEnrollmentCode } from "./enrollment-code.js";
import { createTestContext, newServerKeys, type TestContext } from "./test-context.js";

const staff = { headers: { "x-cls-actor": "staff:test@example.com" } };
const LIMITED = /^too many failed attempts; retry after \d+ seconds$/;
const logger = pino({ level: "silent" });

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

function enrollWith(t: TestContext, enrollmentCode: string) {
  return t.identity.enroll({ enrollmentCode, publicKey: newServerKeys().publicKey, serverName: "guess" });
}

describe("enrollment brute force (issue 4; SPEC L13: limits key on the code, never the address)", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({ limits: { enrollmentPerCode: { failures: 3, windowSeconds: 60 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses a code with resource_exhausted after 3 failures with it, while other codes still work", async () => {
    const guessed = newEnrollmentCode();
    for (let i = 0; i < 3; i++) expect(await refusal(enrollWith(t, guessed))).toMatchObject({ code: Code.Unauthenticated });

    const limited = await refusal(enrollWith(t, guessed));
    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.rawMessage).toMatch(LIMITED);
    // Case and dashes do not make a new code for the limit either.
    expect(await refusal(enrollWith(t, guessed.toLowerCase().replaceAll("-", "")))).toMatchObject({ code: Code.ResourceExhausted });

    const { server } = await enrollWith(t, await t.newCode(t.newAccount()));
    expect(server?.serverId).toMatch(/^srv_/);
  });

  it("counts re-use of a spent code as failures too (SPEC L11: codes are single-use)", async () => {
    const code = await t.newCode(t.newAccount());
    await enrollWith(t, code);
    for (let i = 0; i < 3; i++) expect(await refusal(enrollWith(t, code))).toMatchObject({ code: Code.AlreadyExists });
    expect(await refusal(enrollWith(t, code))).toMatchObject({ code: Code.ResourceExhausted });
  });

  it("audits each counted failure as anonymous without the code, and not the refused flood (SPEC L16)", async () => {
    const account = t.newAccount();
    const spent = await t.newCode(account);
    await enrollWith(t, spent);
    const guessed = newEnrollmentCode();
    const before = await t.db.selectFrom("audit").selectAll().where("action", "=", "enrollment.failed").execute();

    await refusal(enrollWith(t, guessed));
    await refusal(enrollWith(t, spent));
    for (let i = 0; i < 5; i++) await refusal(enrollWith(t, guessed));

    const failures = (await t.db.selectFrom("audit").selectAll().where("action", "=", "enrollment.failed").execute()).filter(
      (row) => !before.some((old) => old.audit_id === row.audit_id),
    );
    // 3 counted for the guessed code (then limited, not audited) and 1 for the spent code.
    expect(failures).toHaveLength(4);
    expect(failures.every((row) => row.actor === "anonymous")).toBe(true);
    expect(failures.filter((row) => row.account_id === account.accountId)).toMatchObject([{ detail: { reason: "code_already_used" } }]);
    expect(failures.filter((row) => row.account_id === null).map((row) => row.detail)).toEqual(Array(3).fill({ reason: "unknown_code" }));
    const text = JSON.stringify(failures);
    for (const code of [guessed, spent]) {
      expect(text).not.toContain(code);
      expect(text).not.toContain(code.replaceAll("-", ""));
    }
  });

  it("does not count malformed codes, and writes nothing for them (error table: invalid_argument)", async () => {
    const before = await t.db.selectFrom("audit").selectAll().execute();
    for (let i = 0; i < 5; i++) expect(await refusal(enrollWith(t, "not a code"))).toMatchObject({ code: Code.InvalidArgument });
    expect(await t.db.selectFrom("audit").selectAll().execute()).toHaveLength(before.length);
  });
});

describe("global enrollment limit across all codes (issue 4: guessing random codes)", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({ limits: { enrollmentGlobal: { failures: 5, windowSeconds: 60 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("after 5 failures with 5 different codes refuses every enrollment, even a valid code, and writes nothing for it", async () => {
    const account = t.newAccount();
    const valid = await t.newCode(account);
    for (let i = 0; i < 5; i++) expect(await refusal(enrollWith(t, newEnrollmentCode()))).toMatchObject({ code: Code.Unauthenticated });

    const limited = await refusal(enrollWith(t, valid));

    expect(limited).toMatchObject({ code: Code.ResourceExhausted, rawMessage: expect.stringMatching(LIMITED) });
    expect(await t.db.selectFrom("servers").selectAll().where("account_id", "=", account.accountId).execute()).toHaveLength(0);
    const code = await t.db.selectFrom("enrollment_codes").selectAll().where("account_id", "=", account.accountId).executeTakeFirstOrThrow();
    expect(code.used_at).toBeNull();
  });
});

describe("API-key exchange brute force (issue 4), counted in Redis", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({
      redis: true,
      limits: { apiKeyPerKey: { failures: 2, windowSeconds: 60 }, apiKeyGlobal: { failures: 4, windowSeconds: 60 } },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("limits failures per key id, then across all keys; counters hold key ids, never secrets", async () => {
    const accountId = newId("acc");
    const first = await t.admin.createApiKey({ accountId, name: "first" }, staff);
    const second = await t.admin.createApiKey({ accountId, name: "second" }, staff);
    const firstKey = parseApiKey(first.secret)!;
    const wrong = (keyId: string) => `cls_${keyId}_${"B".repeat(43)}`;

    for (let i = 0; i < 2; i++) expect(await refusal(t.identity.exchangeApiKey({ apiKey: wrong(firstKey.keyId) }))).toMatchObject({ code: Code.Unauthenticated });
    // The right secret is refused too: the key is limited before any secret is looked at.
    expect(await refusal(t.identity.exchangeApiKey({ apiKey: first.secret }))).toMatchObject({ code: Code.ResourceExhausted, rawMessage: expect.stringMatching(LIMITED) });
    // Another key is not limited by the first one's failures; a success does not count.
    await t.identity.exchangeApiKey({ apiKey: second.secret });
    for (let i = 0; i < 2; i++) expect(await refusal(t.identity.exchangeApiKey({ apiKey: wrong(newId("key")) }))).toMatchObject({ code: Code.Unauthenticated });
    // Four failures in all: now every exchange is refused.
    expect(await refusal(t.identity.exchangeApiKey({ apiKey: second.secret }))).toMatchObject({ code: Code.ResourceExhausted });

    const keys = await t.redis!.keys("cls-test:*");
    expect(keys.some((key) => key.endsWith(firstKey.keyId))).toBe(true);
    expect(keys.join("\n")).not.toContain(firstKey.secret);
  });
});

describe("Authenticate brute force per server (issue 4)", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({ limits: { authenticatePerServer: { failures: 2, windowSeconds: 60 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses a server's sign-in after 2 bad signatures, audits them, and leaves other servers alone", async () => {
    const { server, keys } = await t.enrollServer();
    const other = await t.enrollServer();
    for (let i = 0; i < 2; i++) {
      const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });
      const forged = sign(null, challenge, newServerKeys().privateKey);
      expect(await refusal(t.identity.authenticate({ serverId: server.serverId, challenge, signature: forged }))).toMatchObject({ code: Code.Unauthenticated });
    }

    expect(await refusal(t.signIn(server.serverId, keys))).toMatchObject({ code: Code.ResourceExhausted, rawMessage: expect.stringMatching(LIMITED) });
    expect((await t.signIn(other.server.serverId, other.keys)).accessToken).not.toBe("");
    const audit = await t.db.selectFrom("audit").selectAll().where("action", "=", "server.authentication_failed").where("subject", "=", server.serverId).execute();
    expect(audit).toHaveLength(2);
    expect(audit[0]).toMatchObject({ actor: "anonymous", account_id: server.accountId, detail: { server_id: server.serverId, reason: "bad_signature" } });
  });

  it("does not count a successful sign-in", async () => {
    const { server, keys } = await t.enrollServer();
    for (let i = 0; i < 4; i++) expect((await t.signIn(server.serverId, keys)).accessToken).not.toBe("");
  });
});

describe("CreateChallenge per server (issue 4: nobody can grow the challenge table without bound)", () => {
  let t: TestContext;
  beforeAll(async () => {
    t = await createTestContext({ limits: { challengesPerServer: { failures: 3, windowSeconds: 60 } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("issues 3 challenges to a server in a window, then refuses with resource_exhausted and stores nothing more", async () => {
    const { server } = await t.enrollServer();
    const other = await t.enrollServer();
    for (let i = 0; i < 3; i++) expect((await t.identity.createChallenge({ serverId: server.serverId })).challenge.length).toBeGreaterThan(0);

    const limited = await refusal(t.identity.createChallenge({ serverId: server.serverId }));

    expect(limited.code).toBe(Code.ResourceExhausted);
    expect(limited.rawMessage).toMatch(/^too many challenges requested for this server; retry after \d+ seconds$/);
    const stored = await t.db.selectFrom("challenges").select("challenge_id").where("server_id", "=", server.serverId).execute();
    expect(stored).toHaveLength(3);
    expect((await t.identity.createChallenge({ serverId: other.server.serverId })).challenge.length).toBeGreaterThan(0);
  });

  it("counts nothing for an id that is not an enrolled server", async () => {
    const unknown = newId("srv");
    for (let i = 0; i < 5; i++) expect(await refusal(t.identity.createChallenge({ serverId: unknown }))).toMatchObject({ code: Code.Unauthenticated });
  });
});

describe("createBruteForceGuard", () => {
  const prefix = () => `cls-test:${randomBytes(6).toString("hex")}:`;
  let redis: Redis;
  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    // Until the connection is ready the guard counts in memory (its fallback), so wait for it.
    expect(await redis.ping()).toBe("PONG");
  });
  afterAll(async () => {
    await redis?.quit();
  });

  async function outcomes(guard: BruteForceGuard, attempts: number, key = "key_x"): Promise<Array<"reserved" | "limited">> {
    const results = await Promise.allSettled(Array.from({ length: attempts }, () => guard.apiKeyExchange(key)));
    return results.map((result) => {
      if (result.status === "fulfilled") return "reserved";
      expect(result.reason).toBeInstanceOf(ResourceExhaustedError);
      return "limited";
    });
  }

  it("shares the counts between replicas through Redis (issue 4: on every replica)", async () => {
    const keyPrefix = prefix();
    const limits = { apiKeyPerKey: { failures: 3, windowSeconds: 60 } };
    const replicaA = createBruteForceGuard({ redis, keyPrefix, limits, logger });
    const replicaB = createBruteForceGuard({ redis, keyPrefix, limits, logger });

    await replicaA.apiKeyExchange("key_shared");
    await replicaA.apiKeyExchange("key_shared");
    await replicaB.apiKeyExchange("key_shared");

    await expect(replicaB.apiKeyExchange("key_shared")).rejects.toBeInstanceOf(ResourceExhaustedError);
    await expect(replicaA.apiKeyExchange("key_shared")).rejects.toBeInstanceOf(ResourceExhaustedError);
  });

  it("never lets concurrent attempts overshoot a limit, in Redis or in memory", async () => {
    const limits = { apiKeyPerKey: { failures: 3, windowSeconds: 60 } };
    for (const guard of [createBruteForceGuard({ redis, keyPrefix: prefix(), limits, logger }), createBruteForceGuard({ limits, logger })]) {
      const results = await outcomes(guard, 10);
      expect(results.filter((r) => r === "reserved")).toHaveLength(3);
    }
  });

  it("gives a reservation back when the attempt succeeds, and a refused attempt does not use the global allowance", async () => {
    const guard = createBruteForceGuard({ limits: { apiKeyPerKey: { failures: 1, windowSeconds: 60 }, apiKeyGlobal: { failures: 3, windowSeconds: 60 } }, logger });
    for (let i = 0; i < 5; i++) await (await guard.apiKeyExchange("key_ok")).refund();

    await guard.apiKeyExchange("key_a"); // a failure: kept
    for (let i = 0; i < 3; i++) await expect(guard.apiKeyExchange("key_a")).rejects.toBeInstanceOf(ResourceExhaustedError);
    await guard.apiKeyExchange("key_b");
    await guard.apiKeyExchange("key_c");
    await expect(guard.apiKeyExchange("key_d")).rejects.toBeInstanceOf(ResourceExhaustedError);
  });
});
