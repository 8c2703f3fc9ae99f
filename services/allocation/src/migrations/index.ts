import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";

/** The allocation service's migrations, in order. */
export const allocationMigrations: MigrationSet = {
  "0001_initial": initial,
};
