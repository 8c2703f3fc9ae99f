import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";
import * as expiryNotices from "./0002_expiry_notices.js";
import * as outboxTraceContext from "./0003_outbox_trace_context.js";

/** The pool service's migrations, in order. */
export const poolMigrations: MigrationSet = {
  "0001_initial": initial,
  "0002_expiry_notices": expiryNotices,
  "0003_outbox_trace_context": outboxTraceContext,
};
