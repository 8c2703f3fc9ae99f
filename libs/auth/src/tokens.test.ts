import { createPublicKey } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { HOUR_MS, ManualClock, SECOND_MS } from "@cls/clock";
import { UnauthenticatedError } from "@cls/errors";
import { generateEd25519PrivateKeyPem, keyIdOf, privateKeyFromPem, rawPublicKey } from "@cls/lease";
import { createTokenIssuer, createTokenVerifier, parsePublicKeysPem } from "./tokens.js";

const TTL_MS = HOUR_MS;
const SERVER_ID = "srv_0123456789abcdef0123456789abcdef";
const ACCOUNT_ID = "acc_0123456789abcdef0123456789abcdef";

function setup() {
  const clock = new ManualClock(new Date("2026-05-01T10:00:00Z"));
  const privateKeyPem = generateEd25519PrivateKeyPem();
  const issuer = createTokenIssuer(privateKeyPem, { clock, ttlMs: TTL_MS });
  const verifier = createTokenVerifier(parsePublicKeysPem(issuer.publicKeyPem), { clock });
  return { clock, privateKeyPem, issuer, verifier };
}

/** Asserts that verifying `token` is refused as `unauthenticated`, and returns the error. */
async function refused(verify: Promise<unknown>): Promise<UnauthenticatedError> {
  const error = await verify.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnauthenticatedError);
  expect((error as UnauthenticatedError).code).toBe(Code.Unauthenticated);
  return error as UnauthenticatedError;
}

/** A token signed with the given key, with claims chosen by the test. */
async function craft(
  privateKeyPem: string,
  claims: { iss?: string; aud?: string; sub?: string; acc?: unknown; knd?: unknown; exp?: number; iat?: number },
  kid?: string,
) {
  const key = privateKeyFromPem(privateKeyPem);
  const { iss, aud, sub, exp, iat, ...rest } = claims;
  let jwt = new SignJWT(rest).setProtectedHeader({ alg: "EdDSA", kid: kid ?? keyIdOf(rawPublicKey(createPublicKey(key)))! });
  if (iss !== undefined) jwt = jwt.setIssuer(iss);
  if (aud !== undefined) jwt = jwt.setAudience(aud);
  if (sub !== undefined) jwt = jwt.setSubject(sub);
  if (iat !== undefined) jwt = jwt.setIssuedAt(iat);
  if (exp !== undefined) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(key);
}

describe("access tokens", () => {
  it("verifies an issued token to the caller it was issued for", async () => {
    const { issuer, verifier, clock } = setup();
    const issued = await issuer.issueServerToken(SERVER_ID, ACCOUNT_ID);
    expect(issued.expiresAt).toEqual(new Date(clock.now().getTime() + TTL_MS));
    expect(await verifier.verify(issued.token)).toEqual({ kind: "server", serverId: SERVER_ID, accountId: ACCOUNT_ID });
  });

  it("verifies a customer's API-key token to a customer caller, distinct from a server", async () => {
    const { issuer, verifier } = setup();
    const { token } = await issuer.issueCustomerToken("key_1", ACCOUNT_ID);
    expect(await verifier.verify(token)).toEqual({ kind: "customer", apiKeyId: "key_1", accountId: ACCOUNT_ID });
  });

  it("keeps callers apart: each token names its own server and account", async () => {
    const { issuer, verifier } = setup();
    const a = await issuer.issueServerToken("srv_a", "acc_a");
    const b = await issuer.issueServerToken("srv_b", "acc_b");
    expect(await verifier.verify(a.token)).toMatchObject({ serverId: "srv_a", accountId: "acc_a" });
    expect(await verifier.verify(b.token)).toMatchObject({ serverId: "srv_b", accountId: "acc_b" });
  });

  it("accepts a token until its expiry and refuses it after", async () => {
    const { issuer, verifier, clock } = setup();
    const { token } = await issuer.issueServerToken(SERVER_ID, ACCOUNT_ID);
    clock.advance(TTL_MS - SECOND_MS);
    await expect(verifier.verify(token)).resolves.toMatchObject({ serverId: SERVER_ID });
    clock.advance(2 * SECOND_MS);
    const error = await refused(verifier.verify(token));
    expect(error.message).toBe("access token expired: authenticate again");
  });

  it("refuses a token signed by a key the verifier does not know", async () => {
    const { verifier, clock } = setup();
    const stranger = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: TTL_MS });
    const { token } = await stranger.issueServerToken(SERVER_ID, ACCOUNT_ID);
    const error = await refused(verifier.verify(token));
    expect(error.message).toBe("access token signed by an unknown key");
  });

  it("refuses a token signed by another key under the trusted key's id", async () => {
    const { verifier, issuer } = setup();
    const trustedKid = keyIdOf(rawPublicKey(parsePublicKeysPem(issuer.publicKeyPem)[0]!));
    const forged = await craft(
      generateEd25519PrivateKeyPem(),
      { iss: "cls.server-identity", aud: "cls", sub: SERVER_ID, acc: ACCOUNT_ID, knd: "server", exp: Math.floor(Date.parse("2026-05-01T11:00:00Z") / 1000) },
      trustedKid,
    );
    await refused(verifier.verify(forged));
  });

  it("refuses a tampered token: payload or signature changed", async () => {
    const { issuer, verifier } = setup();
    const { token } = await issuer.issueServerToken(SERVER_ID, ACCOUNT_ID);
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const otherAccount = Buffer.from(JSON.stringify({ ...claims, acc: "acc_ffffffffffffffffffffffffffffffff" })).toString("base64url");
    await refused(verifier.verify(`${header}.${otherAccount}.${signature}`));

    const flipped = Buffer.from(signature, "base64url");
    flipped[0] = flipped[0]! ^ 0x01;
    await refused(verifier.verify(`${header}.${payload}.${flipped.toString("base64url")}`));
    await refused(verifier.verify(`${header}.${payload}.`));
  });

  it("refuses garbage and unsigned tokens", async () => {
    const { verifier } = setup();
    await refused(verifier.verify(""));
    await refused(verifier.verify("not-a-token"));
    await refused(verifier.verify("a.b.c"));
    const none = `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${Buffer.from(
      JSON.stringify({ iss: "cls.server-identity", aud: "cls", sub: SERVER_ID, acc: ACCOUNT_ID, knd: "server" }),
    ).toString("base64url")}.`;
    await refused(verifier.verify(none));
  });

  it("refuses a validly signed token with the wrong issuer, audience or kind, or no account", async () => {
    const { verifier, privateKeyPem, clock } = setup();
    const exp = Math.floor(clock.now().getTime() / 1000) + 600;
    const good = { iss: "cls.server-identity", aud: "cls", sub: SERVER_ID, acc: ACCOUNT_ID, knd: "server", exp };
    // The crafted token with the right claims is accepted, so each refusal below is for its one change.
    await expect(verifier.verify(await craft(privateKeyPem, good))).resolves.toMatchObject({ serverId: SERVER_ID });
    await refused(verifier.verify(await craft(privateKeyPem, { ...good, iss: "someone-else" })));
    await refused(verifier.verify(await craft(privateKeyPem, { ...good, aud: "other-audience" })));
    await refused(verifier.verify(await craft(privateKeyPem, { ...good, knd: "staff" })));
    const { acc: _acc, ...noAccount } = good;
    expect((await refused(verifier.verify(await craft(privateKeyPem, noAccount)))).message).toBe("access token is missing its subject");
    const { sub: _sub, ...noSubject } = good;
    await refused(verifier.verify(await craft(privateKeyPem, noSubject)));
  });
});

describe("parsePublicKeysPem and key rotation", () => {
  it("reads every key of a multi-key PEM file", () => {
    const a = setup().issuer.publicKeyPem;
    const b = setup().issuer.publicKeyPem;
    const keys = parsePublicKeysPem(`# rotation\n${a}\n${b}`);
    expect(keys).toHaveLength(2);
    expect(keys[0]!.export({ format: "pem", type: "spki" }).toString()).toBe(a);
    expect(keys[1]!.export({ format: "pem", type: "spki" }).toString()).toBe(b);
  });

  it("refuses a file without a public key", () => {
    expect(() => parsePublicKeysPem("")).toThrow("no PEM public key found");
    expect(() => parsePublicKeysPem(generateEd25519PrivateKeyPem())).toThrow("no PEM public key found");
  });

  it("a verifier with [old, new] accepts tokens of both; one with only the new key refuses the old", async () => {
    const clock = new ManualClock();
    const oldIssuer = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: TTL_MS });
    const newIssuer = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: TTL_MS });
    const during = createTokenVerifier(parsePublicKeysPem(oldIssuer.publicKeyPem + newIssuer.publicKeyPem), { clock });
    const after = createTokenVerifier(parsePublicKeysPem(newIssuer.publicKeyPem), { clock });
    const oldToken = (await oldIssuer.issueServerToken("srv_old", ACCOUNT_ID)).token;
    const newToken = (await newIssuer.issueServerToken("srv_new", ACCOUNT_ID)).token;
    expect(await during.verify(oldToken)).toMatchObject({ kind: "server", serverId: "srv_old" });
    expect(await during.verify(newToken)).toMatchObject({ kind: "server", serverId: "srv_new" });
    expect(await after.verify(newToken)).toMatchObject({ kind: "server", serverId: "srv_new" });
    await refused(after.verify(oldToken));
  });
});
