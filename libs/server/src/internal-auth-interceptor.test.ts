import { createPublicKey } from "node:crypto";
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { SignJWT } from "jose";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createInternalSigner, createInternalVerifier, parseTrustedCallers } from "@cls/auth";
import { generateEd25519PrivateKeyPem, privateKeyFromPem } from "@cls/lease";
import { AccountSchema, Health, HealthCheckResponse_ServingStatus as Status, PoolAdminService } from "@cls/proto";
import { actorOf } from "./caller.js";
import { errorInterceptor } from "./error-interceptor.js";
import { internalAuthInterceptor } from "./internal-auth-interceptor.js";

const pem = () => generateEd25519PrivateKeyPem();
const publicPem = (privatePem: string) => createPublicKey(privatePem).export({ type: "spki", format: "pem" }).toString();
const alice = { actor: "staff:alice@vendor.example", key: pem() };
const pool = { actor: "service:pool", key: pem() };
const verifier = createInternalVerifier([alice, pool].map((c) => ({ actor: c.actor, publicKeyPem: publicPem(c.key) })));

/** An internal PoolAdminService whose CreateAccount answers with the proven actor. */
function adminWith(credential: () => Promise<string | undefined>) {
  const bearer: Interceptor = (next) => async (req) => {
    const token = await credential();
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createRouterTransport(
    (router) => {
      router.service(PoolAdminService, {
        createAccount: async (_req, ctx) => ({ account: create(AccountSchema, { accountId: "acc_1", name: actorOf(ctx) }) }),
      });
      router.service(Health, { check: async () => ({ status: Status.SERVING }) });
    },
    { transport: { interceptors: [bearer] }, router: { interceptors: [errorInterceptor(pino({ level: "silent" })), internalAuthInterceptor(verifier)] } },
  );
  return { admin: createClient(PoolAdminService, transport), health: createClient(Health, transport) };
}

const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => ConnectError.from(error));

describe("internal callers (SPEC L16: the audit records the proven actor)", () => {
  it("records the actor each trusted staff member or service proves with its own key", async () => {
    for (const caller of [alice, pool]) {
      const signer = createInternalSigner(caller.actor, caller.key);
      const { account } = await adminWith(() => signer.token()).admin.createAccount({ name: "x" });
      expect(account?.name).toBe(caller.actor);
    }
  });

  it("refuses a call without a credential, with an untrusted key, or claiming another's name", async () => {
    const stranger = createInternalSigner("staff:mallory@example.com", pem());
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "EdDSA", kid: (await decodeKid(createInternalSigner(alice.actor, alice.key).token())) })
      .setSubject("staff:root@vendor.example")
      .setAudience("cls-internal")
      .setIssuedAt()
      .setExpirationTime("1m")
      .sign(privateKeyFromPem(alice.key));
    for (const credential of [async () => undefined, () => stranger.token(), async () => forged, async () => "not.a.token"]) {
      const error = await refusal(adminWith(credential).admin.createAccount({ name: "x" }));
      expect(error?.code).toBe(Code.Unauthenticated);
    }
  });

  it("lets health checks through without a credential", async () => {
    expect((await adminWith(async () => undefined).health.check({ service: "" })).status).toBe(Status.SERVING);
  });

  it("reads the trusted-callers file and refuses malformed entries", () => {
    expect(parseTrustedCallers(JSON.stringify({ [alice.actor]: publicPem(alice.key) }))).toEqual([{ actor: alice.actor, publicKeyPem: publicPem(alice.key) }]);
    expect(() => parseTrustedCallers("[]")).toThrow(/JSON object/);
    expect(() => parseTrustedCallers(JSON.stringify({ alice: publicPem(alice.key) }))).toThrow(/staff:<name> or service:<name>/);
    expect(() => parseTrustedCallers(JSON.stringify({ [alice.actor]: 42 }))).toThrow(/PEM public key/);
  });
});

async function decodeKid(token: Promise<string>): Promise<string> {
  const [header] = (await token).split(".");
  return JSON.parse(Buffer.from(header!, "base64url").toString()).kid as string;
}

describe("internal caller keys across a rotation and across clocks", () => {
  it("trusts every key listed for an actor, so a service's old and new keys overlap", async () => {
    const oldKey = pem();
    const newKey = pem();
    const trusted = parseTrustedCallers(JSON.stringify({ "service:pool": [publicPem(oldKey), publicPem(newKey)] }));
    const rotating = createInternalVerifier(trusted);
    for (const key of [oldKey, newKey]) {
      expect(await rotating.verify(await createInternalSigner("service:pool", key).token())).toBe("service:pool");
    }
    expect(() => parseTrustedCallers(JSON.stringify({ "service:pool": [] }))).toThrow(/list of them/);
  });

  it("accepts a caller whose clock runs a few seconds ahead", async () => {
    const ahead = await new SignJWT({})
      .setProtectedHeader({ alg: "EdDSA", kid: await decodeKid(createInternalSigner(alice.actor, alice.key).token()) })
      .setSubject(alice.actor)
      .setAudience("cls-internal")
      .setIssuedAt(Math.floor(Date.now() / 1000) + 10)
      .setExpirationTime(Math.floor(Date.now() / 1000) + 130)
      .sign(privateKeyFromPem(alice.key));
    expect(await verifier.verify(ahead)).toBe(alice.actor);
  });
});
