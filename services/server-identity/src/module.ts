import type { Client } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import type { Kysely } from "kysely";
import type { RevocationList, TokenIssuer } from "@cls/auth";
import type { Clock } from "@cls/clock";
import { forSchema, migrateSchema } from "@cls/db";
import { deliverToNotificationService, startOutboxRelay } from "@cls/outbox";
import {
  AccountService,
  ServerIdentityAdminService,
  ServerIdentityService,
  type AllocationAdminService,
  type NotificationAdminService,
  type PoolAdminService,
} from "@cls/proto";
import type { ServiceModule } from "@cls/runtime";
import { bind, type Logger } from "@cls/server";
import { createAccountService } from "./account.service.js";
import { createBruteForceGuard, type BruteForceLimits } from "./brute-force.js";
import { SERVER_IDENTITY_SCHEMA, type ServerIdentityDatabase } from "./database.js";
import { serverIdentityMigrations } from "./migrations/index.js";
import { createServerIdentityAdminService } from "./server-identity-admin.service.js";
import { createServerIdentityService } from "./server-identity.service.js";
import { createServerManagement } from "./server-management.js";

export interface ServerIdentityModuleDeps {
  root: Kysely<any>;
  clock: Clock;
  logger: Logger;
  /** Signs the access tokens that every other service verifies locally. */
  tokenIssuer: TokenIssuer;
  /**
   * Where revoked servers (`server:<id>`) and API keys (`apikey:<id>`) are published so their
   * existing tokens stop on the next call, on every replica (SPEC L11). Share it with the
   * authentication interceptor of every public port.
   */
  revocations: RevocationList;
  /**
   * When set, the brute-force counters live in Redis and are shared by all replicas; otherwise
   * each process counts on its own. The module does not close it.
   */
  redis?: Redis | undefined;
  /** Overrides of the brute-force limits (defaults: `DEFAULT_BRUTE_FORCE_LIMITS`). */
  bruteForceLimits?: Partial<BruteForceLimits> | undefined;
  /** Prefix of the brute-force counters' Redis keys; default `cls:bruteforce:`. */
  bruteForceKeyPrefix?: string | undefined;
  allocationAdmin: Client<typeof AllocationAdminService>;
  poolAdmin: Client<typeof PoolAdminService>;
  notificationAdmin: Client<typeof NotificationAdminService>;
}

/**
 * Public methods callable without an access token: what an EdgeVis Server calls before it
 * has one (SPEC L11), and a customer's API-key exchange (SPEC L14). RotateKey is not among
 * them: it needs the server's current token.
 */
export const SERVER_IDENTITY_ANONYMOUS_METHODS = ["Enroll", "CreateChallenge", "Authenticate", "ExchangeApiKey"].map(
  (method) => `${ServerIdentityService.typeName}/${method}`,
);

export function migrateServerIdentity(root: Kysely<any>): Promise<string[]> {
  return migrateSchema(root, SERVER_IDENTITY_SCHEMA, serverIdentityMigrations);
}

/**
 * The server-identity service: enrollment, challenge sign-in, key rotation, customers' API keys
 * and access tokens, brute-force limits, and revocation.
 * Public: ServerIdentityService, AccountService. Internal: ServerIdentityAdminService.
 */
export function createServerIdentityModule(deps: ServerIdentityModuleDeps): ServiceModule {
  const db = forSchema<ServerIdentityDatabase>(deps.root, SERVER_IDENTITY_SCHEMA);
  const logger = deps.logger.child({ component: "server-identity" });
  const clock = deps.clock;
  const outbox = startOutboxRelay({ db, clock, logger, source: "server-identity", deliver: deliverToNotificationService(deps.notificationAdmin, "server-identity") });
  const guard = createBruteForceGuard({ redis: deps.redis, limits: deps.bruteForceLimits, keyPrefix: deps.bruteForceKeyPrefix, logger });
  const servers = createServerManagement({
    db,
    clock,
    logger,
    allocation: deps.allocationAdmin,
    pools: deps.poolAdmin,
    outbox,
    revocations: deps.revocations,
  });
  return {
    name: "server-identity",
    publicServices: [
      bind(ServerIdentityService, createServerIdentityService({ db, clock, logger, tokenIssuer: deps.tokenIssuer, allocation: deps.allocationAdmin, outbox, guard })),
      bind(AccountService, createAccountService({ db, servers })),
    ],
    internalServices: [
      bind(ServerIdentityAdminService, createServerIdentityAdminService({ db, clock, logger, tokenIssuer: deps.tokenIssuer, revocations: deps.revocations, servers })),
    ],
    anonymousMethods: [...SERVER_IDENTITY_ANONYMOUS_METHODS],
    flushOutbox: async () => {
      await outbox.flush();
    },
    async stop() {
      await outbox.stop();
    },
  };
}
