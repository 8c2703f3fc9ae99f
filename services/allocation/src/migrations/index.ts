import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";
import * as serverSilence from "./0002_server_silence.js";
import * as outboxTraceContext from "./0003_outbox_trace_context.js";
import * as leaseSerialDefault from "./0004_lease_serial_default.js";

/** The allocation service's migrations, in order. */
export const allocationMigrations: MigrationSet = {
  "0001_initial": initial,
  "0002_server_silence": serverSilence,
  "0003_outbox_trace_context": outboxTraceContext,
  "0004_lease_serial_default": leaseSerialDefault,
};
