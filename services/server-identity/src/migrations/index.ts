import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";
import * as apiKeysAndRotation from "./0002_api_keys_and_rotation.js";
import * as outboxTraceContext from "./0003_outbox_trace_context.js";

/** The server-identity service's migrations, in order. */
export const serverIdentityMigrations: MigrationSet = {
  "0001_initial": initial,
  "0002_api_keys_and_rotation": apiKeysAndRotation,
  "0003_outbox_trace_context": outboxTraceContext,
};
