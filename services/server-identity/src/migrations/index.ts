import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";

/** The server-identity service's migrations, in order. */
export const serverIdentityMigrations: MigrationSet = {
  "0001_initial": initial,
};
