import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";
import * as webhooks from "./0002_webhooks.js";

/** The notification service's migrations, in order. */
export const notificationMigrations: MigrationSet = {
  "0001_initial": initial,
  "0002_webhooks": webhooks,
};
