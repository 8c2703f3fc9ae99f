import { createHash } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECOND_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { parseApiKey } from "./api-key.js";
import { bearer, createTestContext, type TestContext } from "./test-context.js";

/** Protobuf timestamps hold bigints, which JSON.stringify refuses. */
const withBigInts = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value);

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(async () => {
  await t?.close();
});

const staff = { headers: { "x-cls-actor": "staff:alice@example.com" } };
const API_KEY_NOT_VALID = "API key is not valid; check it, or ask for a new one";

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

async function auditCount(): Promise<number> {
  const { count } = await t.db.selectFrom("audit").select((eb) => eb.fn.countAll<string>().as("count")).executeTakeFirstOrThrow();
  return Number(count);
}

describe("CreateApiKey and ListApiKeys (SPEC L14, issue 4: shown once, stored only as a hash)", () => {
  it("returns cls_<key_id>_<secret> once, stores only the secret's SHA-256 and audits the staff actor (SPEC L16)", async () => {
    const accountId = newId("acc");
    const { apiKey, secret } = await t.admin.createApiKey({ accountId, name: "  billing robot  " }, staff);

    expect(apiKey).toMatchObject({ accountId, name: "billing robot" });
    expect(apiKey!.keyId).toMatch(/^key_[0-9a-f]{32}$/);
    expect(apiKey!.revokedAt).toBeUndefined();
    expect(timestampDate(apiKey!.createdAt!)).toEqual(t.clock.now());
    const parsed = parseApiKey(secret);
    expect(secret.startsWith(`cls_${apiKey!.keyId}_`)).toBe(true);
    expect(parsed?.keyId).toBe(apiKey!.keyId);
    expect(parsed!.secret).toHaveLength(43);

    const rows = await t.db.selectFrom("api_keys").selectAll().where("account_id", "=", accountId).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.secret_hash).toBe(createHash("sha256").update(parsed!.secret).digest("hex"));
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(parsed!.secret);
    expect(stored).not.toContain(secret);

    const audit = await t.db.selectFrom("audit").selectAll().where("account_id", "=", accountId).execute();
    expect(audit).toMatchObject([{ action: "api_key.created", actor: "staff:alice@example.com", subject: apiKey!.keyId }]);
    expect(JSON.stringify(audit)).not.toContain(parsed!.secret);
  });

  it("lists an account's keys, oldest first, without any secret", async () => {
    const accountId = newId("acc");
    const first = await t.admin.createApiKey({ accountId, name: "first" }, staff);
    t.clock.advance(SECOND_MS);
    const second = await t.admin.createApiKey({ accountId, name: "second" }, staff);
    await t.admin.createApiKey({ accountId: newId("acc"), name: "someone else's" }, staff);

    const { apiKeys } = await t.admin.listApiKeys({ accountId });

    expect(apiKeys.map((key) => key.name)).toEqual(["first", "second"]);
    const listed = JSON.stringify(apiKeys, withBigInts);
    for (const created of [first, second]) expect(listed).not.toContain(parseApiKey(created.secret)!.secret);
  });

  it("refuses a malformed account id or an empty name with invalid_argument, writing nothing", async () => {
    const before = await auditCount();
    expect(await refusal(t.admin.createApiKey({ accountId: "acc_1", name: "x" }, staff))).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "account_id: must be a acc_ id",
    });
    expect(await refusal(t.admin.createApiKey({ accountId: newId("acc"), name: "  " }, staff))).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "name: is required",
    });
    expect(await auditCount()).toBe(before);
  });
});

describe("ExchangeApiKey (SPEC L14, error table: unauthenticated)", () => {
  it("exchanges a valid key for a short-lived customer access token of its account", async () => {
    const accountId = newId("acc");
    const { apiKey, secret } = await t.admin.createApiKey({ accountId, name: "k" }, staff);

    const response = await t.identity.exchangeApiKey({ apiKey: secret });

    expect(response.accountId).toBe(accountId);
    expect(await t.verifier.verify(response.accessToken)).toEqual({ kind: "customer", apiKeyId: apiKey!.keyId, accountId });
    expect(timestampDate(response.expiresAt!).getTime()).toBe(t.clock.now().getTime() + 300 * SECOND_MS);
  });

  it("gives a wrong secret, an unknown key, a revoked key and a malformed key one generic unauthenticated answer", async () => {
    const accountId = newId("acc");
    const live = await t.admin.createApiKey({ accountId, name: "live" }, staff);
    const revoked = await t.admin.createApiKey({ accountId, name: "revoked" }, staff);
    await t.admin.revokeApiKey({ keyId: revoked.apiKey!.keyId }, staff);
    const { keyId, secret } = parseApiKey(live.secret)!;
    const otherSecret = parseApiKey((await t.admin.createApiKey({ accountId, name: "other" }, staff)).secret)!.secret;

    const attempts = [
      `cls_${keyId}_${otherSecret}`, // wrong secret
      `cls_${newId("key")}_${secret}`, // unknown key id
      revoked.secret, // revoked, with its right secret
      "cls_key_nope_abc", // malformed
      "",
      `Bearer ${live.secret}`,
    ];
    for (const apiKey of attempts) {
      expect(await refusal(t.identity.exchangeApiKey({ apiKey })), apiKey).toMatchObject({ code: Code.Unauthenticated, rawMessage: API_KEY_NOT_VALID });
    }
  });

  it("audits failed exchanges as anonymous, without the secret, and writes nothing for a malformed key (issue 4)", async () => {
    const accountId = newId("acc");
    const live = await t.admin.createApiKey({ accountId, name: "live" }, staff);
    const { keyId } = parseApiKey(live.secret)!;
    const wrongSecret = "A".repeat(43);
    const before = await auditCount();
    await refusal(t.identity.exchangeApiKey({ apiKey: "not-an-api-key" }));
    expect(await auditCount()).toBe(before);

    await refusal(t.identity.exchangeApiKey({ apiKey: `cls_${keyId}_${wrongSecret}` }));

    const failures = await t.db.selectFrom("audit").selectAll().where("action", "=", "api_key.exchange_failed").where("subject", "=", keyId).execute();
    expect(failures).toMatchObject([{ actor: "anonymous", account_id: accountId, detail: { key_id: keyId, reason: "wrong_secret" } }]);
    expect(JSON.stringify(failures)).not.toContain(wrongSecret);
  });
});

describe("RevokeApiKey (issue 4: revoking a key takes effect on its very next call, on every replica)", () => {
  it("marks the key revoked, audits it, publishes apikey:<id> so its current token stops, and is idempotent (SPEC L16)", async () => {
    const accountId = newId("acc");
    const customer = await t.customerSignIn(accountId);
    await t.account.listAccountServers({}, bearer(customer.accessToken));

    const { apiKey } = await t.admin.revokeApiKey({ keyId: customer.keyId }, staff);
    t.clock.advance(SECOND_MS);
    const again = await t.admin.revokeApiKey({ keyId: customer.keyId }, staff);

    expect(timestampDate(apiKey!.revokedAt!)).toEqual(new Date(t.clock.now().getTime() - SECOND_MS));
    expect(again.apiKey).toEqual(apiKey);
    expect(await t.revocations.isRevoked(`apikey:${customer.keyId}`)).toBe(true);
    const row = await t.db.selectFrom("api_keys").selectAll().where("key_id", "=", customer.keyId).executeTakeFirstOrThrow();
    expect(row.revoked_at).toEqual(timestampDate(apiKey!.revokedAt!));
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", customer.keyId).where("action", "=", "api_key.revoked").execute();
    expect(audit).toMatchObject([{ actor: "staff:alice@example.com", account_id: accountId }]);

    // The token issued before the revocation is refused on its next call, and no new one is issued.
    expect(await refusal(t.account.listAccountServers({}, bearer(customer.accessToken)))).toMatchObject({ code: Code.PermissionDenied });
    expect(await refusal(t.identity.exchangeApiKey({ apiKey: customer.apiKey }))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("answers not_found for an unknown key and invalid_argument for a malformed id", async () => {
    expect(await refusal(t.admin.revokeApiKey({ keyId: newId("key") }, staff))).toMatchObject({ code: Code.NotFound });
    expect(await refusal(t.admin.revokeApiKey({ keyId: newId("srv") }, staff))).toMatchObject({ code: Code.InvalidArgument, rawMessage: "key_id: must be a key_ id" });
  });
});
