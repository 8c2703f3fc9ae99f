import { sign } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SECOND_MS } from "@cls/clock";
import { newId } from "@cls/db";
import { createTestContext, newServerKeys, type TestContext } from "./test-context.js";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(async () => {
  await t?.close();
});

const staff = { headers: { "x-cls-actor": "staff:test@example.com" } };

describe("CreateChallenge", () => {
  it("returns single-use challenge bytes that expire after 60 seconds (SPEC L11)", async () => {
    const { server } = await t.enrollServer();
    const { challenge, expiresAt } = await t.identity.createChallenge({ serverId: server.serverId });

    expect(new TextDecoder().decode(challenge)).toMatch(/^cls-challenge-v1\.chl_[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/);
    expect(timestampDate(expiresAt!).getTime()).toBe(t.clock.now().getTime() + 60 * SECOND_MS);
    const second = await t.identity.createChallenge({ serverId: server.serverId });
    expect(Buffer.from(second.challenge).equals(Buffer.from(challenge))).toBe(false);
  });

  it("gives an unknown and a revoked server the same unauthenticated answer (SPEC L11: no enumeration)", async () => {
    const { server } = await t.enrollServer();
    await t.admin.revokeServer({ serverId: server.serverId }, staff);

    const unknown = t.identity.createChallenge({ serverId: newId("srv") }).catch((error: unknown) => error);
    const revoked = t.identity.createChallenge({ serverId: server.serverId }).catch((error: unknown) => error);
    expect(await unknown).toMatchObject({ code: Code.Unauthenticated });
    expect((await revoked as Error).message).toBe((await unknown as Error).message);
  });

  it("refuses a malformed server id with invalid_argument", async () => {
    await expect(t.identity.createChallenge({ serverId: "pool_123" })).rejects.toMatchObject({ code: Code.InvalidArgument, rawMessage: "server_id: must be a srv_ id" });
  });
});

describe("Authenticate", () => {
  it("exchanges a signed challenge for an access token that other services accept (SPEC L11)", async () => {
    const { server, keys } = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });

    const response = await t.identity.authenticate({ serverId: server.serverId, challenge, signature: sign(null, challenge, keys.privateKey) });

    expect(await t.verifier.verify(response.accessToken)).toEqual({ kind: "server", serverId: server.serverId, accountId: server.accountId });
    expect(timestampDate(response.expiresAt!).getTime()).toBe(t.clock.now().getTime() + 300 * SECOND_MS);
  });

  it("refuses a replayed challenge (SPEC L11: a captured request can't be replayed)", async () => {
    const { server, keys } = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });
    const request = { serverId: server.serverId, challenge, signature: sign(null, challenge, keys.privateKey) };
    await t.identity.authenticate(request);

    await expect(t.identity.authenticate(request)).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringContaining("already been used"),
    });
  });

  it("lets only one of several simultaneous uses of one challenge through (SPEC L11)", async () => {
    const { server, keys } = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });
    const request = { serverId: server.serverId, challenge, signature: sign(null, challenge, keys.privateKey) };

    const results = await Promise.allSettled([t.identity.authenticate(request), t.identity.authenticate(request), t.identity.authenticate(request)]);

    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
  });

  it("refuses an expired challenge, by the service's clock (SPEC L11)", async () => {
    const { server, keys } = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });
    t.clock.advance(60 * SECOND_MS);

    await expect(t.identity.authenticate({ serverId: server.serverId, challenge, signature: sign(null, challenge, keys.privateKey) })).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringContaining("expired"),
    });
  });

  it("refuses a signature made with another key (SPEC L11)", async () => {
    const { server } = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });

    await expect(
      t.identity.authenticate({ serverId: server.serverId, challenge, signature: sign(null, challenge, newServerKeys().privateKey) }),
    ).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("signature does not verify") });
  });

  it("refuses a signature over other bytes, and leaves the challenge usable by the real server", async () => {
    const { server, keys } = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });
    const forged = sign(null, Buffer.from("something else"), keys.privateKey);

    await expect(t.identity.authenticate({ serverId: server.serverId, challenge, signature: forged })).rejects.toMatchObject({ code: Code.Unauthenticated });
    const response = await t.identity.authenticate({ serverId: server.serverId, challenge, signature: sign(null, challenge, keys.privateKey) });
    expect(response.accessToken).not.toBe("");
  });

  it("refuses another server's challenge, even signed by that server's key (SPEC L11)", async () => {
    const first = await t.enrollServer();
    const second = await t.enrollServer();
    const { challenge } = await t.identity.createChallenge({ serverId: first.server.serverId });

    await expect(
      t.identity.authenticate({ serverId: second.server.serverId, challenge, signature: sign(null, challenge, second.keys.privateKey) }),
    ).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: expect.stringContaining("not valid for this server") });
  });

  it("refuses malformed challenges and signatures with unauthenticated saying what to send", async () => {
    const { server, keys } = await t.enrollServer();
    const bogus = new TextEncoder().encode("hello");
    await expect(t.identity.authenticate({ serverId: server.serverId, challenge: bogus, signature: sign(null, bogus, keys.privateKey) })).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringContaining("exact bytes CreateChallenge returned"),
    });
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });
    await expect(t.identity.authenticate({ serverId: server.serverId, challenge, signature: new Uint8Array(10) })).rejects.toMatchObject({
      code: Code.Unauthenticated,
      rawMessage: expect.stringContaining("64-byte Ed25519 signature"),
    });
  });

  it("refuses a revoked server with permission_denied, and revocation releases its licences (SPEC L11: revoking stops calls at once)", async () => {
    const { server, keys } = await t.enrollServer();
    await t.signIn(server.serverId, keys);
    const { challenge } = await t.identity.createChallenge({ serverId: server.serverId });

    const { server: revoked } = await t.admin.revokeServer({ serverId: server.serverId }, staff);

    expect(revoked?.revokedAt).toBeDefined();
    expect(t.neighbours.revocationCalls).toContain(server.serverId);
    await expect(t.identity.authenticate({ serverId: server.serverId, challenge, signature: sign(null, challenge, keys.privateKey) })).rejects.toMatchObject({
      code: Code.PermissionDenied,
      rawMessage: "server revoked",
    });
    await expect(t.signIn(server.serverId, keys)).rejects.toMatchObject({ code: Code.Unauthenticated });
  });
});
