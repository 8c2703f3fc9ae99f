import type { Client } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { TokenIssuer } from "@cls/auth";
import type { Clock } from "@cls/clock";
import { forSchema, migrateSchema } from "@cls/db";
import { deliverToNotificationService, startOutboxRelay } from "@cls/outbox";
import {
  ServerIdentityAdminService,
  ServerIdentityService,
  type AllocationAdminService,
  type NotificationAdminService,
  type PoolAdminService,
} from "@cls/proto";
import type { ServiceModule } from "@cls/runtime";
import { bind, type Logger } from "@cls/server";
import { SERVER_IDENTITY_SCHEMA, type ServerIdentityDatabase } from "./database.js";
import { serverIdentityMigrations } from "./migrations/index.js";
import { createServerIdentityAdminService } from "./server-identity-admin.service.js";
import { createServerIdentityService } from "./server-identity.service.js";

export interface ServerIdentityModuleDeps {
  root: Kysely<any>;
  clock: Clock;
  logger: Logger;
  /** Signs the access tokens that every other service verifies locally. */
  tokenIssuer: TokenIssuer;
  allocationAdmin: Client<typeof AllocationAdminService>;
  poolAdmin: Client<typeof PoolAdminService>;
  notificationAdmin: Client<typeof NotificationAdminService>;
}

/** Public methods an EdgeVis Server calls before it has an access token (SPEC L11). */
export const SERVER_IDENTITY_ANONYMOUS_METHODS = ["Enroll", "CreateChallenge", "Authenticate"].map(
  (method) => `${ServerIdentityService.typeName}/${method}`,
);

export function migrateServerIdentity(root: Kysely<any>): Promise<string[]> {
  return migrateSchema(root, SERVER_IDENTITY_SCHEMA, serverIdentityMigrations);
}

/** The server-identity service: enrollment, challenge sign-in, access tokens and revocation. */
export function createServerIdentityModule(deps: ServerIdentityModuleDeps): ServiceModule {
  const db = forSchema<ServerIdentityDatabase>(deps.root, SERVER_IDENTITY_SCHEMA);
  const logger = deps.logger.child({ component: "server-identity" });
  const outbox = startOutboxRelay({ db, clock: deps.clock, logger, deliver: deliverToNotificationService(deps.notificationAdmin, "server-identity") });
  const shared = { db, clock: deps.clock, logger, tokenIssuer: deps.tokenIssuer, allocation: deps.allocationAdmin, outbox };
  return {
    name: "server-identity",
    publicServices: [bind(ServerIdentityService, createServerIdentityService(shared))],
    internalServices: [bind(ServerIdentityAdminService, createServerIdentityAdminService({ ...shared, pools: deps.poolAdmin }))],
    anonymousMethods: [...SERVER_IDENTITY_ANONYMOUS_METHODS],
    async stop() {
      await outbox.stop();
    },
  };
}
