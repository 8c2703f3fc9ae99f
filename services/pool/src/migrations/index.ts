import type { MigrationSet } from "@cls/db";
import * as initial from "./0001_initial.js";

/** The pool service's migrations, in order. */
export const poolMigrations: MigrationSet = {
  "0001_initial": initial,
};
