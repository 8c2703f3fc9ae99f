import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOUR_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { ServerState } from "@cls/proto";
import { bearer, createTestContext, newServerKeys, type TestContext } from "./test-context.js";

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

describe("CreateEnrollmentCode", () => {
  it("returns a one-time code expiring in 4 hours by default, stores only its hash and audits it (SPEC L11, L16)", async () => {
    const account = t.newAccount();
    const { enrollmentCode, expiresAt } = await t.admin.createEnrollmentCode({ ...account }, staff);

    expect(enrollmentCode).toMatch(/^[A-Z2-7]{5}(-[A-Z2-7]{5}){4}$/);
    expect(timestampDate(expiresAt!).getTime()).toBe(t.clock.now().getTime() + 4 * HOUR_MS);
    const rows = await t.db.selectFrom("enrollment_codes").selectAll().where("account_id", "=", account.accountId).execute();
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(enrollmentCode);
    const audit = await t.db.selectFrom("audit").selectAll().where("account_id", "=", account.accountId).execute();
    expect(audit).toMatchObject([{ action: "enrollment_code.created", actor: "staff:alice@example.com" }]);
  });

  it("honours ttl_hours from 1 to 72 and refuses anything else without writing (SPEC L11: expires in hours)", async () => {
    const account = t.newAccount();
    const { expiresAt } = await t.admin.createEnrollmentCode({ ...account, ttlHours: 72 }, staff);
    expect(timestampDate(expiresAt!).getTime()).toBe(t.clock.now().getTime() + 72 * HOUR_MS);
    for (const ttlHours of [-1, 73]) {
      await expect(t.admin.createEnrollmentCode({ ...account, ttlHours }, staff)).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringMatching(/^ttl_hours: /),
      });
    }
    expect(await t.db.selectFrom("enrollment_codes").selectAll().where("account_id", "=", account.accountId).execute()).toHaveLength(1);
  });

  it("refuses a pool of another account with not_found, writing nothing (SPEC L11: another account's ids yield not_found)", async () => {
    const mine = t.newAccount();
    const theirs = t.newAccount();

    await expect(t.admin.createEnrollmentCode({ accountId: mine.accountId, poolId: theirs.poolId }, staff)).rejects.toMatchObject({ code: Code.NotFound });
    await expect(t.admin.createEnrollmentCode({ accountId: mine.accountId, poolId: newId("pool") }, staff)).rejects.toMatchObject({ code: Code.NotFound });
    expect(await t.db.selectFrom("enrollment_codes").selectAll().where("account_id", "=", mine.accountId).execute()).toHaveLength(0);
  });

  it("refuses malformed ids with invalid_argument naming the field", async () => {
    await expect(t.admin.createEnrollmentCode({ accountId: "acc_nope", poolId: newId("pool") }, staff)).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "account_id: must be a acc_ id",
    });
    await expect(t.admin.createEnrollmentCode({ accountId: newId("acc"), poolId: "" }, staff)).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "pool_id: is required",
    });
  });
});

describe("ListServers", () => {
  it("lists only the account's servers, oldest first (SPEC L14)", async () => {
    const account = t.newAccount();
    for (const name of ["first", "second"]) {
      const code = await t.newCode(account);
      await t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: name });
      t.clock.advance(1_000);
    }
    await t.enrollServer();

    const { servers } = await t.admin.listServers({ accountId: account.accountId });

    expect(servers.map((server) => server.name)).toEqual(["first", "second"]);
    expect(servers.every((server) => server.accountId === account.accountId && server.state === ServerState.ACTIVE)).toBe(true);
  });
});

describe("RevokeServer", () => {
  it("revokes once, audits and emits server.revoked, and is idempotent (SPEC L11, L15, L16)", async () => {
    const { server } = await t.enrollServer();

    const first = await t.admin.revokeServer({ serverId: server.serverId }, staff);
    t.clock.advance(5_000);
    const second = await t.admin.revokeServer({ serverId: server.serverId }, staff);

    expect(first.server?.state).toBe(ServerState.REVOKED);
    expect(second.server).toEqual(first.server);
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", server.serverId).where("action", "=", "server.revoked").execute();
    expect(audit).toMatchObject([{ actor: "staff:alice@example.com" }]);
    const events = await t.db.selectFrom("outbox").selectAll().where("type", "=", "server.revoked").where("account_id", "=", server.accountId).execute();
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toEqual({ server_id: server.serverId, name: server.name });
    expect(t.neighbours.revocationCalls.filter((id) => id === server.serverId)).toHaveLength(2);
  });

  it("keeps the revocation when allocation is unreachable, answers unavailable, and a retry completes it", async () => {
    const { server } = await t.enrollServer();
    t.neighbours.failRevocation = new ConnectError("allocation is down", Code.Unavailable);
    try {
      await expect(t.admin.revokeServer({ serverId: server.serverId }, staff)).rejects.toMatchObject({
        code: Code.Unavailable,
        rawMessage: expect.stringContaining("revocation is saved"),
      });
    } finally {
      t.neighbours.failRevocation = undefined;
    }
    const row = await t.db.selectFrom("servers").selectAll().where("server_id", "=", server.serverId).executeTakeFirstOrThrow();
    expect(row.state).toBe("revoked");

    await t.admin.revokeServer({ serverId: server.serverId }, staff);
    expect(t.neighbours.revocationCalls).toContain(server.serverId);
  });

  it("answers not_found for an unknown server", async () => {
    await expect(t.admin.revokeServer({ serverId: newId("srv") }, staff)).rejects.toMatchObject({ code: Code.NotFound });
  });
});

describe("GetTokenKeys", () => {
  it("publishes a JWKS that verifies the access tokens this service issues (SPEC L11)", async () => {
    const { server, keys } = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, keys);

    const { jwksJson } = await t.admin.getTokenKeys({});
    const jwks = JSON.parse(jwksJson) as { keys: Array<Record<string, string>> };

    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    const { payload } = await jwtVerify(accessToken, createLocalJWKSet(jwks as never), { currentDate: t.clock.now() });
    expect(payload.sub).toBe(server.serverId);
  });
});

describe("RevokeServer and the revocation list (SPEC L11: revoking a server stops its calls at once)", () => {
  it("publishes server:<id>, so the server's current token is refused on its next call", async () => {
    const { server, keys } = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, keys);

    await t.admin.revokeServer({ serverId: server.serverId }, staff);

    expect(await t.revocations.isRevoked(`server:${server.serverId}`)).toBe(true);
    const request = { newPublicKey: newServerKeys().publicKey, challenge: new Uint8Array(), signature: new Uint8Array() };
    await expect(t.identity.rotateKey(request, bearer(accessToken))).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});

describe("ListAudit (SPEC L16: enrollments, revocations and credential changes, with actor and time)", () => {
  it("returns the account's trail newest first, with who did each thing", async () => {
    const account = t.newAccount();
    const customer = await t.customerSignIn(account.accountId);
    t.clock.advance(1_000);
    const { enrollmentCode } = await t.account.newEnrollmentCode({ poolId: account.poolId }, bearer(customer.accessToken));
    t.clock.advance(1_000);
    const keys = newServerKeys();
    const { server } = await t.identity.enroll({ enrollmentCode, publicKey: keys.publicKey, serverName: "audited" });
    t.clock.advance(1_000);
    await expect(t.identity.exchangeApiKey({ apiKey: `cls_${customer.keyId}_${"C".repeat(43)}` })).rejects.toMatchObject({ code: Code.Unauthenticated });
    t.clock.advance(1_000);
    await t.account.revokeAccountServer({ serverId: server!.serverId }, bearer(customer.accessToken));
    t.clock.advance(1_000);
    await t.admin.revokeApiKey({ keyId: customer.keyId }, staff);
    await t.enrollServer(); // another account's trail

    const { entries } = await t.admin.listAudit({ accountId: account.accountId });

    expect(entries.map((entry) => [entry.action, entry.actor])).toEqual([
      ["api_key.revoked", "staff:alice@example.com"],
      ["server.revoked", `customer:${customer.keyId}`],
      ["api_key.exchange_failed", "anonymous"],
      ["server.enrolled", `server:${server!.serverId}`],
      ["enrollment_code.created", `customer:${customer.keyId}`],
      ["api_key.created", "staff:test@example.com"],
    ]);
    expect(entries.every((entry) => entry.accountId === account.accountId && entry.occurredAt !== undefined)).toBe(true);
    expect(timestampDate(entries[0]!.occurredAt!)).toEqual(t.clock.now());
    expect(JSON.parse(entries[1]!.detailJson)).toEqual({ server_id: server!.serverId, name: "audited" });
    expect(JSON.stringify(entries, withBigInts)).not.toContain(enrollmentCode);
    expect((await t.admin.listAudit({ accountId: account.accountId, limit: 2 })).entries).toHaveLength(2);
  });

  it("refuses a malformed account id or limit with invalid_argument", async () => {
    await expect(t.admin.listAudit({ accountId: "acc_1" })).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: "account_id: must be a acc_ id" });
    await expect(t.admin.listAudit({ limit: 1_001 })).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(/^limit: /) });
  });
});
