import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";

/** The notification service's migrations, in order. */
export const notificationMigrations: MigrationSet = {
  "0001_initial": initial,
};
