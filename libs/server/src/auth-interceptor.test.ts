import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { callerKey, createInProcessRevocationList, createTokenIssuer, createTokenVerifier, parsePublicKeysPem, type RevocationList } from "@cls/auth";
import { HOUR_MS, ManualClock } from "@cls/clock";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { Health, HealthCheckResponse_ServingStatus, PoolSchema, PoolService, ServerIdentityService } from "@cls/proto";
import { authInterceptor } from "./auth-interceptor.js";
import { actorOf, requireCaller } from "./caller.js";
import { errorInterceptor } from "./error-interceptor.js";
import { registerHealth } from "./health.js";

const clock = new ManualClock(new Date("2026-04-01T00:00:00Z"));
const issuer = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: HOUR_MS });
const verifier = createTokenVerifier(parsePublicKeysPem(issuer.publicKeyPem), { clock });
const ANONYMOUS = new Set([`${ServerIdentityService.typeName}/CreateChallenge`]);

/** What handlers saw, so tests can check the caller recorded in the context. */
const seen: { challengeCaller?: unknown } = {};

/**
 * A public port in memory, with the interceptors in production order: the error interceptor
 * outside the authentication one.
 */
function transport(headers: Record<string, string> = {}, revocations?: RevocationList) {
  const addHeaders: Interceptor = (next) => (req) => {
    for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
    return next(req);
  };
  return createRouterTransport(
    (router) => {
      router.service(PoolService, {
        listPools(_req, ctx) {
          const caller = requireCaller(ctx);
          const name = caller.kind === "server" ? caller.serverId : `customer:${caller.apiKeyId}`;
          return { pools: [create(PoolSchema, { accountId: caller.accountId, name, poolId: actorOf(ctx) })] };
        },
      });
      router.service(ServerIdentityService, {
        createChallenge(_req, ctx) {
          seen.challengeCaller = ctx.values.get(callerKey);
          return { challenge: new Uint8Array([1, 2, 3]) };
        },
        enroll() {
          return {};
        },
        authenticate() {
          return {};
        },
      });
      registerHealth(router, [PoolService.typeName], []);
    },
    {
      router: { interceptors: [errorInterceptor(pino({ level: "silent" })), authInterceptor(verifier, ANONYMOUS, revocations, pino({ level: "silent" }))] },
      transport: { interceptors: [addHeaders] },
    },
  );
}

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  expect((error as ConnectError).code).toBe(Code.Unauthenticated);
  return error as ConnectError;
}

describe("auth interceptor", () => {
  it("lets a valid bearer token through and records the caller", async () => {
    const { token } = await issuer.issueServerToken("srv_1", "acc_1");
    const client = createClient(PoolService, transport({ authorization: `Bearer ${token}` }));
    const { pools } = await client.listPools({});
    expect(pools).toHaveLength(1);
    expect(pools[0]).toMatchObject({ accountId: "acc_1", name: "srv_1" });
  });

  it("refuses a call without an authorization header", async () => {
    const error = await refusal(createClient(PoolService, transport()).listPools({}));
    expect(error.rawMessage).toBe("missing authorization header: send 'Bearer <access token>'");
  });

  it("refuses malformed authorization headers", async () => {
    const { token } = await issuer.issueServerToken("srv_1", "acc_1");
    for (const header of [`Basic ${token}`, token, "Bearer", "Bearer ", `Bearer  ${token}`, `Bearer ${token} extra`, `Bearer ${token}!`]) {
      const error = await refusal(createClient(PoolService, transport({ authorization: header })).listPools({}));
      expect(error.rawMessage, header).toBe("malformed authorization header: expected 'Bearer <access token>'");
    }
  });

  it("refuses a well-formed header with a bad, foreign or expired token", async () => {
    const badToken = await refusal(createClient(PoolService, transport({ authorization: "Bearer abc.def.ghi" })).listPools({}));
    expect(badToken.rawMessage).toBe("access token is not valid");

    const stranger = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: HOUR_MS });
    const foreign = (await stranger.issueServerToken("srv_1", "acc_1")).token;
    await refusal(createClient(PoolService, transport({ authorization: `Bearer ${foreign}` })).listPools({}));

    const local = new ManualClock(clock.now());
    const shortLived = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock: local, ttlMs: 60_000 });
    const expiring = (await shortLived.issueServerToken("srv_1", "acc_1")).token;
    const laterVerifier = createTokenVerifier(parsePublicKeysPem(shortLived.publicKeyPem), { clock: local });
    local.advance(120_000);
    const expiredTransport = createRouterTransport(
      (router) => router.service(PoolService, { listPools: (_req, ctx) => (requireCaller(ctx), { pools: [] }) }),
      {
        router: { interceptors: [errorInterceptor(pino({ level: "silent" })), authInterceptor(laterVerifier, new Set())] },
        transport: { interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${expiring}`), next(req))] },
      },
    );
    const expired = await refusal(createClient(PoolService, expiredTransport).listPools({}));
    expect(expired.rawMessage).toBe("access token expired: authenticate again");
  });

  it("records a customer's API-key caller as such", async () => {
    const { token } = await issuer.issueCustomerToken("key_9", "acc_9");
    const { pools } = await createClient(PoolService, transport({ authorization: `Bearer ${token}` })).listPools({});
    expect(pools[0]).toMatchObject({ accountId: "acc_9", name: "customer:key_9" });
  });

  it("refuses a revoked server or API key with permission_denied, at once, and only that one", async () => {
    const revocations = createInProcessRevocationList();
    const revokedServer = (await issuer.issueServerToken("srv_gone", "acc_1")).token;
    const otherServer = (await issuer.issueServerToken("srv_ok", "acc_1")).token;
    const revokedKey = (await issuer.issueCustomerToken("key_gone", "acc_1")).token;
    const call = (token: string) => createClient(PoolService, transport({ authorization: `Bearer ${token}` }, revocations)).listPools({});
    await expect(call(revokedServer)).resolves.toBeDefined();

    await revocations.revoke("server:srv_gone");
    await revocations.revoke("apikey:key_gone");
    const server = await call(revokedServer).catch((e: unknown) => ConnectError.from(e));
    expect(server).toBeInstanceOf(ConnectError);
    expect((server as ConnectError).code).toBe(Code.PermissionDenied);
    expect((server as ConnectError).rawMessage).toBe("this server has been revoked");
    const key = await call(revokedKey).catch((e: unknown) => ConnectError.from(e));
    expect((key as ConnectError).code).toBe(Code.PermissionDenied);
    expect((key as ConnectError).rawMessage).toBe("this API key has been revoked");
    expect((await call(otherServer)).pools[0]).toMatchObject({ name: "srv_ok" });
  });

  it("lets a call through when the revocation store is unreachable (tokens are short-lived)", async () => {
    const down: RevocationList = {
      revoke: async () => {},
      isRevoked: async () => {
        throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
      },
    };
    const { token } = await issuer.issueServerToken("srv_1", "acc_1");
    const { pools } = await createClient(PoolService, transport({ authorization: `Bearer ${token}` }, down)).listPools({});
    expect(pools[0]).toMatchObject({ name: "srv_1" });
  });

  it("lets anonymous methods through without a token, with no caller recorded", async () => {
    seen.challengeCaller = "not called";
    const client = createClient(ServerIdentityService, transport());
    const { challenge } = await client.createChallenge({ serverId: "srv_1" });
    expect(challenge).toEqual(new Uint8Array([1, 2, 3]));
    expect(seen.challengeCaller).toBeUndefined();
    // Other methods of the same service still need a token.
    await refusal(client.enroll({}));
  });

  it("lets health checks through without a token", async () => {
    const health = createClient(Health, transport());
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: PoolService.typeName })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });
});

describe("requireCaller and actorOf", () => {
  it("requireCaller refuses a handler reached without a caller", async () => {
    // ListPools marked anonymous: the interceptor lets it through, the handler still demands a caller.
    const open = createRouterTransport(
      (router) => router.service(PoolService, { listPools: (_req, ctx) => (requireCaller(ctx), { pools: [] }) }),
      { router: { interceptors: [errorInterceptor(pino({ level: "silent" })), authInterceptor(verifier, new Set([`${PoolService.typeName}/ListPools`]))] } },
    );
    const error = await refusal(createClient(PoolService, open).listPools({}));
    expect(error.rawMessage).toBe("this call needs an access token");
  });
});
