import { Migrator, type Kysely, type Migration } from "kysely";
import { forSchema } from "./open.js";

/** A service's migrations, keyed by name; applied in name order. */
export type MigrationSet = Record<string, Migration>;

/** Brings `schema` up to date. Safe to run from several processes at once (Postgres advisory lock). */
export async function migrateSchema(root: Kysely<any>, schema: string, migrations: MigrationSet): Promise<string[]> {
  const db = forSchema<unknown>(root, schema);
  await root.schema.createSchema(schema).ifNotExists().execute();
  const migrator = new Migrator({
    db: db as Kysely<any>,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
