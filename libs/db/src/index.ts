export { openDatabase, forSchema, type DatabaseHandle, type OpenDatabaseOptions } from "./open.js";
export { migrateSchema, type MigrationSet } from "./migrate.js";
export { sql, type Kysely, type Transaction, type Selectable, type Insertable, type Generated, type ColumnType } from "kysely";
export { newId } from "./ids.js";
