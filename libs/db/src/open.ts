import { mkdirSync } from "node:fs";
import { Kysely, PostgresDialect, WithSchemaPlugin } from "kysely";
import pg from "pg";
import { withPreparedStatements } from "./prepared-statements.js";
import { recordQuerySpan } from "./query-spans.js";

const INT8_OID = 20;

/** One database connection shared by the services of a process. */
export interface DatabaseHandle {
  readonly root: Kysely<any>;
  /** "postgres" for a real server, "pglite" for the embedded one. */
  readonly kind: "postgres" | "pglite";
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres://…; when absent, an embedded PGlite database is used. */
  url?: string | undefined;
  /** Folder that keeps the embedded database across restarts; in memory when absent. */
  embeddedDir?: string | undefined;
  /** Most connections this process opens to Postgres. */
  maxConnections?: number;
}

/** Opens Postgres when a URL is given, otherwise the embedded PGlite (real Postgres in WASM). */
export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.url) {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      types: {
        getTypeParser: (oid: number, format?: unknown) =>
          oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as "text"),
      },
    });
    // A client losing its connection (Postgres restarting) must not crash the process: idle
    // clients report on the pool, checked-out ones on themselves. The query in flight fails
    // (and becomes `unavailable`); pg-pool discards the broken client.
    pool.on("error", () => {});
    pool.on("connect", (client) => client.on("error", () => {}));
    const root = new Kysely<any>({ dialect: new PostgresDialect({ pool: withPreparedStatements(pool) }), log: recordQuerySpan });
    return { root, kind: "postgres", close: () => root.destroy() };
  }
  if (options.embeddedDir) mkdirSync(options.embeddedDir, { recursive: true });
  // Loaded only here, so a process that talks to a real Postgres never loads PGlite.
  const [{ PGlite }, { PGliteDialect }] = await Promise.all([import("@electric-sql/pglite"), import("kysely-pglite-dialect")]);
  const pglite = new PGlite(options.embeddedDir ?? "memory://", {
    parsers: { [INT8_OID]: (value: string) => Number(value) },
  });
  await pglite.waitReady;
  const root = new Kysely<any>({ dialect: new PGliteDialect(pglite), log: recordQuerySpan });
  return {
    root,
    kind: "pglite",
    close: async () => {
      await root.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}

/**
 * A view of the shared connection in which unqualified tables live in `schema`.
 * It shares the root's driver, so embedded PGlite still runs one transaction at a time.
 */
export function forSchema<DB>(root: Kysely<any>, schema: string): Kysely<DB> {
  return root.withPlugin(new WithSchemaPlugin(schema)) as unknown as Kysely<DB>;
}
