import { hash } from "node:crypto";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import type pg from "pg";

/**
 * Statement texts with varying `IN (…)` or `VALUES` lists are unbounded in number, and each
 * prepared statement keeps its parse tree and plans in the backend for the life of the
 * connection. So a connection prepares only the first texts it sees, which include the
 * statements run all the time, and runs any later ones unnamed (parsed and planned per run).
 */
export const MAX_PREPARED_PER_CONNECTION = 500;

/**
 * The pool as Kysely's PostgresDialect expects it, except that each connection sends every
 * parameterised SQL text as a named statement, so Postgres parses and plans it once per
 * connection instead of once per run. Statements without parameters (BEGIN, COMMIT, DDL)
 * stay unnamed, on the simple protocol.
 */
export function withPreparedStatements(pool: pg.Pool, maxPerConnection = MAX_PREPARED_PER_CONNECTION): PostgresPool {
  // Kysely tracks connections by client identity, so a pg client keeps the same wrapper.
  const wrappers = new WeakMap<pg.PoolClient, PreparingClient>();
  return {
    async connect() {
      const client = await pool.connect();
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        wrapper = new PreparingClient(client, maxPerConnection);
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
    end: () => pool.end(),
  };
}

/** A statement's name on the wire: the same text always gets the same name. */
export function statementName(text: string): string {
  return hash("sha1", text).slice(0, 16);
}

class PreparingClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;
  readonly #maxPrepared: number;
  /** The texts this connection prepares, by text; pg itself skips re-parsing a name it has parsed. */
  readonly #names = new Map<string, string>();
  /**
   * Set once a table changed under a prepared statement (a migration adding a column under
   * `select *`): Postgres refuses to run that statement again, so the connection is closed
   * on release instead of failing the same way on every later use.
   */
  #stale = false;

  constructor(client: pg.PoolClient, maxPrepared: number) {
    this.#client = client;
    this.#maxPrepared = maxPrepared;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sqlOrCursor !== "string") return this.#client.query(sqlOrCursor as unknown as pg.Submittable) as unknown as PostgresCursor<R>;
    const values = parameters as unknown[];
    const name = values.length > 0 ? this.#nameFor(sqlOrCursor) : undefined;
    if (!name) return this.#client.query(sqlOrCursor, values) as unknown as Promise<PostgresQueryResult<R>>;
    return this.#client.query({ name, text: sqlOrCursor, values }).catch((error: unknown) => {
      if (isStalePlan(error)) this.#stale = true;
      throw error;
    }) as unknown as Promise<PostgresQueryResult<R>>;
  }

  release(destroy?: boolean): void {
    this.#client.release(destroy || this.#stale);
  }

  #nameFor(text: string): string | undefined {
    let name = this.#names.get(text);
    if (name === undefined && this.#names.size < this.#maxPrepared) {
      name = statementName(text);
      this.#names.set(text, name);
    }
    return name;
  }
}

function isStalePlan(error: unknown): boolean {
  return error instanceof Error && /cached plan must not change result type/.test(error.message);
}
