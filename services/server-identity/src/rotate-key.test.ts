import { sign } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECOND_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { keyIdOf } from "@cls/lease";
import { ServerState } from "@cls/proto";
import { bearer, createTestContext, newServerKeys, type ServerKeys, type TestContext } from "./test-context.js";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(async () => {
  await t?.close();
});

const staff = { headers: { "x-cls-actor": "staff:test@example.com" } };

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

/** CreateChallenge for the server, signed with `signer`, offering `next` as the new key. */
async function rotation(serverId: string, next: ServerKeys, signer: ServerKeys = next) {
  const { challenge } = await t.identity.createChallenge({ serverId });
  return { newPublicKey: next.publicKey, challenge, signature: sign(null, challenge, signer.privateKey) };
}

async function storedKey(serverId: string): Promise<Buffer> {
  const row = await t.db.selectFrom("servers").select("public_key").where("server_id", "=", serverId).executeTakeFirstOrThrow();
  return Buffer.from(row.public_key);
}

describe("RotateKey (SPEC L11: key rotation is supported, without downtime)", () => {
  it("replaces the key: the old key no longer signs in, the new one does, and the current token keeps working (SPEC L16: audited)", async () => {
    const { server, keys: oldKeys } = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, oldKeys);
    const newKeys = newServerKeys();
    t.clock.advance(SECOND_MS);

    const { server: rotated } = await t.identity.rotateKey(await rotation(server.serverId, newKeys), bearer(accessToken));

    expect(rotated).toMatchObject({ serverId: server.serverId, state: ServerState.ACTIVE });
    expect((await storedKey(server.serverId)).equals(Buffer.from(newKeys.publicKey))).toBe(true);
    const row = await t.db.selectFrom("servers").selectAll().where("server_id", "=", server.serverId).executeTakeFirstOrThrow();
    expect(row.key_rotated_at).toEqual(t.clock.now());
    const audit = await t.db.selectFrom("audit").selectAll().where("subject", "=", server.serverId).where("action", "=", "server.key_rotated").execute();
    expect(audit).toMatchObject([
      {
        actor: `server:${server.serverId}`,
        account_id: server.accountId,
        detail: { server_id: server.serverId, old_key_id: keyIdOf(oldKeys.publicKey), new_key_id: keyIdOf(newKeys.publicKey) },
      },
    ]);

    // The token obtained with the old key still verifies until it expires: no downtime.
    expect(await t.verifier.verify(accessToken)).toEqual({ kind: "server", serverId: server.serverId, accountId: server.accountId });
    expect(await refusal(t.signIn(server.serverId, oldKeys))).toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringContaining("signature does not verify"),
    });
    expect((await t.signIn(server.serverId, newKeys)).accessToken).not.toBe("");
  });

  it("refuses a challenge signed by the old key, and keeps the old key", async () => {
    const { server, keys } = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, keys);

    const error = await refusal(t.identity.rotateKey(await rotation(server.serverId, newServerKeys(), keys), bearer(accessToken)));

    expect(error).toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("does not verify with new_public_key") });
    expect((await storedKey(server.serverId)).equals(Buffer.from(keys.publicKey))).toBe(true);
  });

  it("refuses a challenge that was used, expired or given to another server (SPEC L11: no replay)", async () => {
    const { server, keys } = await t.enrollServer();
    const other = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, keys);
    const next = newServerKeys();

    const used = await rotation(server.serverId, next);
    await t.identity.rotateKey(used, bearer(accessToken));
    const after = newServerKeys();
    const replay = { ...used, newPublicKey: after.publicKey, signature: sign(null, used.challenge, after.privateKey) };
    expect(await refusal(t.identity.rotateKey(replay, bearer(accessToken)))).toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("already been used") });

    const stale = await rotation(server.serverId, after);
    t.clock.advance(60 * SECOND_MS);
    expect(await refusal(t.identity.rotateKey(stale, bearer(accessToken)))).toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("expired") });

    const foreign = await rotation(other.server.serverId, after);
    expect(await refusal(t.identity.rotateKey(foreign, bearer(accessToken)))).toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("not valid for this server") });
    expect((await storedKey(server.serverId)).equals(Buffer.from(next.publicKey))).toBe(true);
  });

  it("refuses a malformed, weak or unchanged new key with invalid_argument naming new_public_key", async () => {
    const { server, keys } = await t.enrollServer();
    const { accessToken } = await t.signIn(server.serverId, keys);

    const short = { ...(await rotation(server.serverId, newServerKeys())), newPublicKey: new Uint8Array(31) };
    expect(await refusal(t.identity.rotateKey(short, bearer(accessToken)))).toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(/^new_public_key: /) });
    const identity = new Uint8Array(32);
    identity[0] = 1; // the neutral point: small order
    const weak = { ...(await rotation(server.serverId, newServerKeys())), newPublicKey: identity };
    expect(await refusal(t.identity.rotateKey(weak, bearer(accessToken)))).toMatchObject({ code: Code.InvalidArgument, rawMessage: expect.stringContaining("weak") });
    expect(await refusal(t.identity.rotateKey(await rotation(server.serverId, keys), bearer(accessToken)))).toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: expect.stringContaining("current key"),
    });
  });

  it("needs the server's own access token: none is unauthenticated, a customer's is permission_denied, a revoked server's is permission_denied", async () => {
    const { server, keys } = await t.enrollServer();
    const request = await rotation(server.serverId, newServerKeys());
    expect(await refusal(t.identity.rotateKey(request))).toMatchObject({ code: Code.Unauthenticated });

    const customer = await t.customerSignIn(server.accountId);
    expect(await refusal(t.identity.rotateKey(request, bearer(customer.accessToken)))).toMatchObject({ code: Code.PermissionDenied });

    const { accessToken } = await t.signIn(server.serverId, keys);
    await t.admin.revokeServer({ serverId: server.serverId }, staff);
    expect(await refusal(t.identity.rotateKey(request, bearer(accessToken)))).toMatchObject({ code: Code.PermissionDenied });
    expect((await storedKey(server.serverId)).equals(Buffer.from(keys.publicKey))).toBe(true);
  });

  it("rotates only the caller's own server: a token names the server, whatever server id the challenge names", async () => {
    const mine = await t.enrollServer();
    const { accessToken } = await t.signIn(mine.server.serverId, mine.keys);
    const unknown = newId("srv");
    expect(await refusal(t.identity.createChallenge({ serverId: unknown }))).toMatchObject({ code: Code.Unauthenticated });
    const theirs = await t.enrollServer();
    const request = await rotation(theirs.server.serverId, newServerKeys());
    expect(await refusal(t.identity.rotateKey(request, bearer(accessToken)))).toMatchObject({ code: Code.Unauthenticated });
    expect((await storedKey(theirs.server.serverId)).equals(Buffer.from(theirs.keys.publicKey))).toBe(true);
  });
});
