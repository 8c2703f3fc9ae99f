import { Migrator, sql, type Kysely, type Migration } from "kysely";
import { forSchema } from "./open.js";

/** A service's migrations, keyed by name; applied in name order. */
export type MigrationSet = Record<string, Migration>;

/** Brings `schema` up to date. Safe to run from several processes at once (Postgres advisory lock). */
export async function migrateSchema(root: Kysely<any>, schema: string, migrations: MigrationSet): Promise<string[]> {
  const db = forSchema<unknown>(root, schema);
  // Replicas starting together must not race to create the schema: serialise on a lock.
  await root.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`cls-migrate:${schema}`}))`.execute(trx);
    await trx.schema.createSchema(schema).ifNotExists().execute();
  });
  const migrator = new Migrator({
    db: db as Kysely<any>,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
