import { createPublicKey, type KeyObject } from "node:crypto";
import { createTokenIssuer, createTokenVerifier } from "@cls/auth";
import { privateKeyFromPem } from "@cls/lease";
import { AllocationAdminService, NotificationAdminService, PoolAdminService } from "@cls/proto";
import { internalGrpcClient, readConfiguredFile, runStandaloneService } from "@cls/runtime";
import { readServerIdentityConfig } from "./config.js";
import { SERVER_IDENTITY_SCHEMA } from "./database.js";
import { serverIdentityMigrations } from "./migrations/index.js";
import { createServerIdentityModule } from "./module.js";

const config = readServerIdentityConfig();

function tokenPublicKeyOf(privateKeyPem: string): KeyObject {
  try {
    return createPublicKey(privateKeyFromPem(privateKeyPem));
  } catch (error) {
    throw new Error(`TOKEN_SIGNING_KEY_FILE: ${(error as Error).message}`);
  }
}

const signingKeyPem = readConfiguredFile("TOKEN_SIGNING_KEY_FILE", config.TOKEN_SIGNING_KEY_FILE);
const tokenPublicKey = tokenPublicKeyOf(signingKeyPem);
await runStandaloneService({
  name: "server-identity",
  config,
  schema: SERVER_IDENTITY_SCHEMA,
  migrations: serverIdentityMigrations,
  // This service holds the signing key, so it verifies with its own public key.
  tokenVerifier: (clock) => createTokenVerifier([tokenPublicKey], { clock }),
  build: ({ infrastructure, logger, clock, serviceSigner }) =>
    createServerIdentityModule({
      root: infrastructure.database.root,
      clock,
      logger,
      tokenIssuer: createTokenIssuer(signingKeyPem, { clock, ttlMs: config.TOKEN_TTL_SECONDS * 1000 }),
      // The same list the public port's authentication interceptor checks: in Redis when
      // REDIS_URL is set (every replica sees a revocation at once), else in this process.
      revocations: infrastructure.revocations,
      // Brute-force counters shared by all replicas; without Redis each process counts alone.
      redis: infrastructure.redis,
      bruteForceLimits: {
        enrollmentPerCode: { failures: config.ENROLLMENT_FAILURES_PER_CODE, windowSeconds: 15 * 60 },
        enrollmentGlobal: { failures: config.ENROLLMENT_FAILURES_PER_MINUTE, windowSeconds: 60 },
        apiKeyPerKey: { failures: config.API_KEY_FAILURES_PER_KEY, windowSeconds: 15 * 60 },
        apiKeyGlobal: { failures: config.API_KEY_FAILURES_PER_MINUTE, windowSeconds: 60 },
        authenticatePerServer: { failures: config.AUTHENTICATE_FAILURES_PER_SERVER, windowSeconds: 5 * 60 },
        challengesPerServer: { failures: config.CHALLENGES_PER_SERVER_PER_MINUTE, windowSeconds: 60 },
      },
      allocationAdmin: internalGrpcClient(AllocationAdminService, config.ALLOCATION_INTERNAL_URL, serviceSigner()),
      poolAdmin: internalGrpcClient(PoolAdminService, config.POOL_INTERNAL_URL, serviceSigner()),
      notificationAdmin: internalGrpcClient(NotificationAdminService, config.NOTIFICATION_INTERNAL_URL, serviceSigner()),
    }),
});
