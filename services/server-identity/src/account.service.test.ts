import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOUR_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { ServerState } from "@cls/proto";
import { hashEnrollmentCode } from "./enrollment-code.js";
import { bearer, createTestContext, newServerKeys, type TestContext } from "./test-context.js";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(async () => {
  await t?.close();
});

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

/** An account with a pool, and a customer signed in with an API key of it. */
async function customer() {
  const account = t.newAccount();
  const signedIn = await t.customerSignIn(account.accountId);
  return { ...account, ...signedIn, options: bearer(signedIn.accessToken), actor: `customer:${signedIn.keyId}` };
}

/** Enrolls a server into the account with a code the customer made. */
async function enrollInto(c: Awaited<ReturnType<typeof customer>>, name: string) {
  const { enrollmentCode } = await t.account.newEnrollmentCode({ poolId: c.poolId }, c.options);
  const keys = newServerKeys();
  const { server } = await t.identity.enroll({ enrollmentCode, publicKey: keys.publicKey, serverName: name });
  return { server: server!, keys };
}

describe("NewEnrollmentCode (SPEC L11: a customer creates a one-time code for their account)", () => {
  it("makes a code for the caller's own pool that enrolls a server there, audited with the customer as actor (SPEC L16)", async () => {
    const c = await customer();

    const { enrollmentCode, expiresAt } = await t.account.newEnrollmentCode({ poolId: c.poolId, ttlHours: 2 }, c.options);

    expect(timestampDate(expiresAt!).getTime()).toBe(t.clock.now().getTime() + 2 * HOUR_MS);
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", hashEnrollmentCode(enrollmentCode)).execute();
    expect(audit).toMatchObject([{ action: "enrollment_code.created", actor: c.actor, account_id: c.accountId }]);
    const { server } = await t.identity.enroll({ enrollmentCode, publicKey: newServerKeys().publicKey, serverName: "new site" });
    expect(server).toMatchObject({ accountId: c.accountId, poolId: c.poolId });
  });

  it("answers another account's pool exactly like a pool that does not exist, naming nothing of the other account (SPEC L11)", async () => {
    const c = await customer();
    const other = t.newAccount();
    const missingPool = newId("pool");

    const theirs = await refusal(t.account.newEnrollmentCode({ poolId: other.poolId }, c.options));
    const missing = await refusal(t.account.newEnrollmentCode({ poolId: missingPool }, c.options));

    expect(theirs.code).toBe(Code.NotFound);
    expect(missing.code).toBe(Code.NotFound);
    expect(theirs.rawMessage.replace(other.poolId, "<pool>")).toBe(missing.rawMessage.replace(missingPool, "<pool>"));
    expect(theirs.rawMessage).not.toContain(other.accountId);
    expect(await t.db.selectFrom("enrollment_codes").selectAll().where("pool_id", "=", other.poolId).execute()).toHaveLength(0);
  });

  it("refuses bad input with invalid_argument naming the field", async () => {
    const c = await customer();
    expect(await refusal(t.account.newEnrollmentCode({ poolId: "pool_x" }, c.options))).toMatchObject({ code: Code.InvalidArgument, rawMessage: "pool_id: must be a pool_ id" });
    expect(await refusal(t.account.newEnrollmentCode({ poolId: c.poolId, ttlHours: 73 }, c.options))).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringMatching(/^ttl_hours: /),
    });
  });
});

describe("ListAccountServers (SPEC L14: list their servers)", () => {
  it("lists only the caller's account's servers", async () => {
    const c = await customer();
    const first = await enrollInto(c, "first");
    t.clock.advance(1_000);
    const second = await enrollInto(c, "second");
    await t.enrollServer(); // another account's

    const { servers } = await t.account.listAccountServers({}, c.options);

    expect(servers.map((server) => server.serverId)).toEqual([first.server.serverId, second.server.serverId]);
    expect(servers.every((server) => server.accountId === c.accountId)).toBe(true);
  });
});

describe("RevokeAccountServer (SPEC L14: revoke one; L11: revoking stops its calls at once)", () => {
  it("revokes the caller's server: its token stops at once, allocation frees its licences, and it is audited (SPEC L16)", async () => {
    const c = await customer();
    const { server, keys } = await enrollInto(c, "stolen");
    const { accessToken } = await t.signIn(server.serverId, keys);

    const { server: revoked } = await t.account.revokeAccountServer({ serverId: server.serverId }, c.options);

    expect(revoked).toMatchObject({ serverId: server.serverId, state: ServerState.REVOKED });
    expect(await t.revocations.isRevoked(`server:${server.serverId}`)).toBe(true);
    expect(t.neighbours.revocationCalls).toContain(server.serverId);
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", server.serverId).where("action", "=", "server.revoked").execute();
    expect(audit).toMatchObject([{ actor: c.actor, account_id: c.accountId }]);
    // The server's existing token is refused on its next call.
    const request = { newPublicKey: newServerKeys().publicKey, challenge: new Uint8Array(), signature: new Uint8Array() };
    expect(await refusal(t.identity.rotateKey(request, bearer(accessToken)))).toMatchObject({ code: Code.PermissionDenied });
    expect(await refusal(t.signIn(server.serverId, keys))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("answers another account's server exactly like a missing one, and changes nothing (SPEC L11)", async () => {
    const c = await customer();
    const { server: theirs } = await t.enrollServer();
    const missing = newId("srv");
    const callsBefore = t.neighbours.revocationCalls.length;

    const forTheirs = await refusal(t.account.revokeAccountServer({ serverId: theirs.serverId }, c.options));
    const forMissing = await refusal(t.account.revokeAccountServer({ serverId: missing }, c.options));

    expect(forTheirs.code).toBe(Code.NotFound);
    expect(forTheirs.rawMessage.replace(theirs.serverId, "<id>")).toBe(forMissing.rawMessage.replace(missing, "<id>"));
    expect(forTheirs.rawMessage).not.toContain(theirs.accountId);
    const row = await t.db.selectFrom("servers").selectAll().where("server_id", "=", theirs.serverId).executeTakeFirstOrThrow();
    expect(row.state).toBe("active");
    expect(await t.revocations.isRevoked(`server:${theirs.serverId}`)).toBe(false);
    expect(t.neighbours.revocationCalls).toHaveLength(callsBefore);
  });
});

describe("who may call AccountService", () => {
  it("refuses an EdgeVis Server's token with permission_denied, and no token with unauthenticated", async () => {
    const { server, keys } = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, keys);

    expect(await refusal(t.account.listAccountServers({}, bearer(accessToken)))).toMatchObject({ code: Code.PermissionDenied });
    expect(await refusal(t.account.newEnrollmentCode({ poolId: server.poolId }, bearer(accessToken)))).toMatchObject({ code: Code.PermissionDenied });
    expect(await refusal(t.account.revokeAccountServer({ serverId: server.serverId }, bearer(accessToken)))).toMatchObject({ code: Code.PermissionDenied });
    expect(await refusal(t.account.listAccountServers({}))).toMatchObject({ code: Code.Unauthenticated });
  });

  it("refuses a revoked key's token even when the revocation list has lost it (the key's own row decides)", async () => {
    const c = await customer();
    // Revoked in the database only, as if the revocation list's entry were lost (Redis restarted).
    await t.db.updateTable("api_keys").set({ revoked_at: t.clock.now() }).where("key_id", "=", c.keyId).execute();
    expect(await t.revocations.isRevoked(`apikey:${c.keyId}`)).toBe(false);

    expect(await refusal(t.account.listAccountServers({}, c.options))).toMatchObject({ code: Code.PermissionDenied, rawMessage: "this API key has been revoked" });
    expect(await refusal(t.account.newEnrollmentCode({ poolId: c.poolId }, c.options))).toMatchObject({ code: Code.PermissionDenied });
  });
});
