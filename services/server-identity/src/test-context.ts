import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { Code, ConnectError, createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { createInProcessRevocationList, createTokenIssuer, createTokenVerifier, type RevocationList, type TokenIssuer, type TokenVerifier } from "@cls/auth";
import { ManualClock } from "@cls/clock";
import { forSchema, newId, type Kysely } from "@cls/db";
import { generateEd25519PrivateKeyPem, rawPublicKey } from "@cls/lease";
import {
  AccountService,
  AllocationAdminService,
  NotificationAdminService,
  PoolAdminService,
  ServerIdentityAdminService,
  ServerIdentityService,
  type BindServerRequest,
  type Notification,
  type Server,
} from "@cls/proto";
import { authInterceptor, errorInterceptor, type ServiceBinding } from "@cls/server";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { TEST_REDIS_URL } from "../../../test/support/env.js";
import type { BruteForceLimits } from "./brute-force.js";
import { SERVER_IDENTITY_SCHEMA, type ServerIdentityDatabase } from "./database.js";
import { createServerIdentityModule, migrateServerIdentity } from "./module.js";
import { actorFromTestHeader } from "../../../test/support/actor-header.js";

/** What the fake neighbouring services saw, and how they should misbehave. */
export interface Neighbours {
  /** pool id → owning account id, as the pool service knows them. */
  pools: Map<string, string>;
  bindCalls: BindServerRequest[];
  revocationCalls: string[];
  ingested: Notification[];
  failBind?: Error | undefined;
  failRevocation?: Error | undefined;
}

export interface ServerKeys {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

export interface TestContext {
  database: TestDatabase;
  db: Kysely<ServerIdentityDatabase>;
  clock: ManualClock;
  issuer: TokenIssuer;
  verifier: TokenVerifier;
  neighbours: Neighbours;
  /** The revocation list the module publishes to and the public interceptor checks. */
  revocations: RevocationList;
  identity: Client<typeof ServerIdentityService>;
  /** The customers' AccountService; pass `bearer(token)` as call options. */
  account: Client<typeof AccountService>;
  admin: Client<typeof ServerIdentityAdminService>;
  /** The Redis client of the brute-force counters, when the context was made with `redis: true`. */
  redis: Redis | undefined;
  /** A new account with one pool, known to the fake pool service. */
  newAccount(): { accountId: string; poolId: string };
  newCode(account: { accountId: string; poolId: string }, ttlHours?: number): Promise<string>;
  /** Enrolls a new server with a fresh key pair into a new account. */
  enrollServer(): Promise<{ server: Server; keys: ServerKeys }>;
  /** CreateChallenge, sign, Authenticate. */
  signIn(serverId: string, keys: ServerKeys): Promise<{ accessToken: string }>;
  /** CreateApiKey for the account (as staff), then ExchangeApiKey. */
  customerSignIn(accountId: string): Promise<{ keyId: string; apiKey: string; accessToken: string }>;
  close(): Promise<void>;
}

export function newServerKeys(): ServerKeys {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

export interface TestContextOptions {
  /** Brute-force limits; every limit defaults to 1,000 failures a minute so that only tests about them hit them. */
  limits?: Partial<BruteForceLimits>;
  /** Keep the brute-force counters in the local Redis (random key prefix) instead of memory. */
  redis?: boolean;
}

const GENEROUS: BruteForceLimits = {
  enrollmentPerCode: { failures: 1_000, windowSeconds: 60 },
  enrollmentGlobal: { failures: 1_000, windowSeconds: 60 },
  apiKeyPerKey: { failures: 1_000, windowSeconds: 60 },
  apiKeyGlobal: { failures: 1_000, windowSeconds: 60 },
  authenticatePerServer: { failures: 1_000, windowSeconds: 60 },
  challengesPerServer: { failures: 1_000, windowSeconds: 60 },
};

/** Call options carrying an access token. */
export function bearer(accessToken: string) {
  return { headers: { authorization: `Bearer ${accessToken}` } };
}

function routed(bindings: readonly ServiceBinding[], interceptors: Interceptor[]) {
  return createRouterTransport(
    (router) => {
      for (const binding of bindings) router.service(binding.service, binding.impl);
    },
    { router: { interceptors } },
  );
}

/** A migrated database and the service module over fake neighbours, called through Connect. */
export async function createTestContext(options: TestContextOptions = {}): Promise<TestContext> {
  const database = await createTestDatabase();
  await migrateServerIdentity(database.handle.root);
  const clock = new ManualClock(new Date("2030-01-01T00:00:00Z"));
  const logger = pino({ level: "silent" });
  const issuer = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock, ttlMs: 300_000 });
  const verifier = createTokenVerifier([createPublicKey(issuer.publicKeyPem)], { clock });
  const neighbours: Neighbours = { pools: new Map(), bindCalls: [], revocationCalls: [], ingested: [] };

  const poolAdmin = createClient(
    PoolAdminService,
    createRouterTransport((router) =>
      router.service(PoolAdminService, {
        getPool(req) {
          const accountId = neighbours.pools.get(req.poolId);
          if (!accountId) throw new ConnectError(`pool ${req.poolId} not found`, Code.NotFound);
          return { pool: { poolId: req.poolId, accountId, name: "test pool" } };
        },
      }),
    ),
  );
  const allocationAdmin = createClient(
    AllocationAdminService,
    createRouterTransport((router) =>
      router.service(AllocationAdminService, {
        bindServer(req) {
          if (neighbours.failBind) throw neighbours.failBind;
          neighbours.bindCalls.push(req);
          return {};
        },
        applyServerRevocation(req) {
          if (neighbours.failRevocation) throw neighbours.failRevocation;
          neighbours.revocationCalls.push(req.serverId);
          return { released: 0 };
        },
      }),
    ),
  );
  const notificationAdmin = createClient(
    NotificationAdminService,
    createRouterTransport((router) =>
      router.service(NotificationAdminService, {
        ingestEvents(req) {
          neighbours.ingested.push(...req.events);
          return { accepted: req.events.length };
        },
      }),
    ),
  );

  const revocations = createInProcessRevocationList();
  const redis = options.redis ? new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 }) : undefined;
  // Fails loudly when Redis is missing; and until it is ready the counters would be in memory.
  if (redis && (await redis.ping()) !== "PONG") throw new Error(`Redis at ${TEST_REDIS_URL} did not answer PING`);
  const module = createServerIdentityModule({
    root: database.handle.root,
    clock,
    logger,
    tokenIssuer: issuer,
    revocations,
    redis,
    bruteForceLimits: { ...GENEROUS, ...options.limits },
    bruteForceKeyPrefix: `cls-test:${randomBytes(6).toString("hex")}:`,
    allocationAdmin,
    poolAdmin,
    notificationAdmin,
  });
  const interceptors = [errorInterceptor(logger), authInterceptor(verifier, new Set(module.anonymousMethods), revocations)];
  const identity = createClient(ServerIdentityService, routed(module.publicServices, interceptors));
  const account = createClient(AccountService, routed(module.publicServices, interceptors));
  const admin = createClient(ServerIdentityAdminService, routed(module.internalServices, [errorInterceptor(logger), actorFromTestHeader()]));

  const context: TestContext = {
    database,
    db: forSchema<ServerIdentityDatabase>(database.handle.root, SERVER_IDENTITY_SCHEMA),
    clock,
    issuer,
    verifier,
    neighbours,
    revocations,
    identity,
    account,
    admin,
    redis,
    newAccount() {
      const account = { accountId: newId("acc"), poolId: newId("pool") };
      neighbours.pools.set(account.poolId, account.accountId);
      return account;
    },
    async newCode(account, ttlHours = 0) {
      const response = await admin.createEnrollmentCode({ ...account, ttlHours }, { headers: { "x-cls-actor": "staff:test@example.com" } });
      return response.enrollmentCode;
    },
    async enrollServer() {
      const keys = newServerKeys();
      const code = await context.newCode(context.newAccount());
      const { server } = await identity.enroll({ enrollmentCode: code, publicKey: keys.publicKey, serverName: "site A" });
      return { server: server!, keys };
    },
    async signIn(serverId, keys) {
      const { challenge } = await identity.createChallenge({ serverId });
      return identity.authenticate({ serverId, challenge, signature: sign(null, challenge, keys.privateKey) });
    },
    async customerSignIn(accountId) {
      const created = await admin.createApiKey({ accountId, name: "test key" }, { headers: { "x-cls-actor": "staff:test@example.com" } });
      const { accessToken } = await identity.exchangeApiKey({ apiKey: created.secret });
      return { keyId: created.apiKey!.keyId, apiKey: created.secret, accessToken };
    },
    async close() {
      await module.stop();
      await redis?.quit();
      await database.drop();
    },
  };
  return context;
}
