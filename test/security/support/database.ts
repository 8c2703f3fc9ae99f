import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";

/** The schemas CLS's services own (one per service). */
export const CLS_SCHEMAS = ["pool", "allocation", "server_identity", "notification"] as const;

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Every base table of every CLS schema, as `schema.table`. */
export async function clsTables(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      `select table_schema || '.' || table_name as name from information_schema.tables
       where table_type = 'BASE TABLE' and table_schema = any($1::text[]) order by 1`,
      [[...CLS_SCHEMAS]],
    );
    return rows.map((r) => r.name);
  });
}

/** What is in one table: how many rows, and a digest of all of them. */
export interface TableState {
  rows: number;
  digest: string;
}

/** Row count and content digest of every table of every CLS schema. */
export async function snapshotTables(url: string): Promise<Record<string, TableState>> {
  const tables = await clsTables(url);
  return withClient(url, async (client) => {
    const state: Record<string, TableState> = {};
    for (const table of tables) {
      const [schema, name] = table.split(".") as [string, string];
      const ident = `${client.escapeIdentifier(schema)}.${client.escapeIdentifier(name)}`;
      const { rows } = await client.query<{ rows: string; digest: string | null }>(
        `select count(*) as rows, md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) as digest from ${ident} t`,
      );
      state[table] = { rows: Number(rows[0]!.rows), digest: rows[0]!.digest ?? "" };
    }
    return state;
  });
}

/** Runs one query against the test database. */
export async function query<R extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
  return withClient(url, async (client) => (await client.query<R>(text, params)).rows);
}

/** Every row of every table of every non-system schema, as text, one line per row. */
export async function everyRowAsText(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows: tables } = await client.query<{ schema: string; name: string }>(
      `select table_schema as schema, table_name as name from information_schema.tables
       where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema') and table_schema not like 'pg\\_%'
       order by 1, 2`,
    );
    const lines: string[] = [];
    for (const table of tables) {
      const ident = `${client.escapeIdentifier(table.schema)}.${client.escapeIdentifier(table.name)}`;
      const { rows } = await client.query<{ row: string }>(`select t::text as row from ${ident} t`);
      for (const row of rows) lines.push(`${table.schema}.${table.name}: ${row.row}`);
    }
    return lines.join("\n");
  });
}

/** `pg_dump` of the whole test database (schema and data), as the SRE's backup would hold it. */
export async function pgDump(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)("pg_dump", ["--no-owner", "--no-privileges", "--dbname", url], { maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}
