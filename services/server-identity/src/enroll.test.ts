import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { HOUR_MS } from "@cls/clock";
import { ServerState } from "@cls/proto";
import { hashEnrollmentCode } from "./enrollment-code.js";
import { createTestContext, newServerKeys, type TestContext } from "./test-context.js";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(async () => {
  await t?.close();
});

async function codeRow(code: string) {
  return t.db.selectFrom("enrollment_codes").selectAll().where("code_hash", "=", hashEnrollmentCode(code)).executeTakeFirstOrThrow();
}

async function serversOf(accountId: string) {
  return t.db.selectFrom("servers").selectAll().where("account_id", "=", accountId).execute();
}

describe("Enroll", () => {
  it("binds a new server to the code's account and pool, with audit, event and allocation binding (SPEC L11, L15, L16)", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account);
    const keys = newServerKeys();

    const { server } = await t.identity.enroll({ enrollmentCode: code, publicKey: keys.publicKey, serverName: "  Depot 4  " });

    expect(server?.serverId).toMatch(/^srv_[0-9a-f]{32}$/);
    expect(server).toMatchObject({ accountId: account.accountId, poolId: account.poolId, name: "Depot 4", state: ServerState.ACTIVE });
    expect(timestampDate(server!.enrolledAt!)).toEqual(t.clock.now());
    const [row] = await serversOf(account.accountId);
    expect(Buffer.from(row!.public_key).equals(Buffer.from(keys.publicKey))).toBe(true);
    expect(await codeRow(code)).toMatchObject({ used_at: t.clock.now(), used_by_server_id: server!.serverId });
    expect(t.neighbours.bindCalls).toContainEqual(expect.objectContaining({ serverId: server!.serverId, accountId: account.accountId, poolId: account.poolId }));

    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", server!.serverId).execute();
    expect(audit).toMatchObject([{ action: "server.enrolled", actor: `server:${server!.serverId}`, account_id: account.accountId }]);
    await vi.waitFor(() => {
      expect(t.neighbours.ingested).toContainEqual(expect.objectContaining({ type: "server.enrolled", accountId: account.accountId, source: "server-identity" }));
    }, { timeout: 10_000 });
  });

  it("accepts a code typed in lower case without dashes", async () => {
    const code = await t.newCode(t.newAccount());
    const { server } = await t.identity.enroll({ enrollmentCode: code.toLowerCase().replaceAll("-", ""), publicKey: newServerKeys().publicKey, serverName: "typed" });
    expect(server?.state).toBe(ServerState.ACTIVE);
  });

  it("refuses a code the second time with already_exists (SPEC L11: codes are single-use)", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account);
    await t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "first" });

    await expect(t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "second" })).rejects.toMatchObject({
      code: Code.AlreadyExists,
    });
    expect((await serversOf(account.accountId)).map((row) => row.name)).toEqual(["first"]);
  });

  it("lets only one of several simultaneous enrollments with one code succeed (SPEC L11)", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account);
    const results = await Promise.allSettled(
      ["a", "b", "c"].map((name) => t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: name })),
    );
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
    for (const result of results) {
      if (result.status === "rejected") expect(ConnectError.from(result.reason).code).toBe(Code.AlreadyExists);
    }
    expect(await serversOf(account.accountId)).toHaveLength(1);
  });

  it("refuses an expired code with unauthenticated (SPEC L11: codes expire in hours)", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account, 1);
    t.clock.advance(HOUR_MS);

    await expect(t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "late" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringContaining("enrollment code is not valid or has expired"),
    });
    expect(await serversOf(account.accountId)).toHaveLength(0);
    expect((await codeRow(code)).used_at).toBeNull();
  });

  it("refuses an unknown code with unauthenticated (SPEC L11)", async () => {
    await expect(
      t.identity.enroll({ enrollmentCode: "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", publicKey: newServerKeys().publicKey, serverName: "guess" }),
    ).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("enrollment code is not valid or has expired") });
  });

  it("refuses a bad public key with invalid_argument and writes nothing (SPEC errors: bad input never writes)", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account);
    const bindsBefore = t.neighbours.bindCalls.length;

    await expect(t.identity.enroll({ enrollmentCode: code, publicKey: new Uint8Array(31), serverName: "short key" })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "public_key: must be a raw 32-byte Ed25519 public key, got 31 bytes",
    });
    await expect(t.identity.enroll({ enrollmentCode: code, publicKey: new Uint8Array(32), serverName: "weak key" })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "  " })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "server_name: is required",
    });
    await expect(t.identity.enroll({ enrollmentCode: "not-a-code", publicKey: newServerKeys().publicKey, serverName: "x" })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringMatching(/^enrollment_code: /),
    });

    expect(await serversOf(account.accountId)).toHaveLength(0);
    expect((await codeRow(code)).used_at).toBeNull();
    expect(t.neighbours.bindCalls).toHaveLength(bindsBefore);
  });

  it("rolls back when allocation cannot bind the server, leaving the code usable (SPEC L10, L11)", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account);
    const eventsBefore = await t.db.selectFrom("outbox").select("event_id").execute();
    t.neighbours.failBind = new ConnectError("allocation is down", Code.Unavailable);
    try {
      await expect(t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "unlucky" })).rejects.toMatchObject({
        code: Code.Unavailable,
        rawMessage: expect.stringContaining("the code was not used"),
      });
    } finally {
      t.neighbours.failBind = undefined;
    }
    expect(await serversOf(account.accountId)).toHaveLength(0);
    expect((await codeRow(code)).used_at).toBeNull();
    expect(await t.db.selectFrom("outbox").select("event_id").execute()).toHaveLength(eventsBefore.length);

    const { server } = await t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "retried" });
    expect(server?.name).toBe("retried");
  });

  it("answers internal, and still consumes nothing, when allocation refuses the binding outright", async () => {
    const account = t.newAccount();
    const code = await t.newCode(account);
    t.neighbours.failBind = new ConnectError("pool unknown", Code.FailedPrecondition);
    try {
      await expect(t.identity.enroll({ enrollmentCode: code, publicKey: newServerKeys().publicKey, serverName: "refused" })).rejects.toMatchObject({
        code: Code.Internal,
      });
    } finally {
      t.neighbours.failBind = undefined;
    }
    expect((await codeRow(code)).used_at).toBeNull();
  });
});
