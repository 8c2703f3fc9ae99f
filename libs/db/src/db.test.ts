import { randomBytes } from "node:crypto";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { newId } from "./ids.js";
import { migrateSchema, type MigrationSet } from "./migrate.js";
import { forSchema, openDatabase, type DatabaseHandle } from "./open.js";
import { statementName, withPreparedStatements } from "./prepared-statements.js";

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

const freshSchema = () => `s_${randomBytes(4).toString("hex")}`;

async function tablesIn(root: Kysely<any>, schema: string): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = ${schema} order by table_name`.execute(root);
  return rows.map((row) => row.table_name);
}

const migrations: MigrationSet = {
  "001_widgets": {
    async up(db) {
      await db.schema
        .createTable("widgets")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("n", "integer", (c) => c.notNull())
        .execute();
    },
  },
  "002_gadgets": {
    async up(db) {
      await db.schema.createTable("gadgets").addColumn("id", "text", (c) => c.primaryKey()).execute();
    },
  },
};

describe("migrateSchema", () => {
  it("applies every migration once, in name order, and is idempotent", async () => {
    const schema = freshSchema();
    const order: string[] = [];
    const tracked: MigrationSet = Object.fromEntries(
      Object.entries(migrations)
        .reverse()
        .map(([name, migration]) => [name, { up: async (db: Kysely<any>) => (order.push(name), migration.up(db)) }]),
    );
    expect(await migrateSchema(database.handle.root, schema, tracked)).toEqual(["001_widgets", "002_gadgets"]);
    expect(order).toEqual(["001_widgets", "002_gadgets"]);
    expect(await migrateSchema(database.handle.root, schema, tracked)).toEqual([]);
    expect(order).toEqual(["001_widgets", "002_gadgets"]);
    const tables = await tablesIn(database.handle.root, schema);
    expect(tables).toEqual(expect.arrayContaining(["gadgets", "widgets"]));
    // Its bookkeeping lives in the schema too, not in public.
    expect(tables.some((name) => name.startsWith("kysely_migration"))).toBe(true);
    expect(await tablesIn(database.handle.root, "public")).not.toContain("widgets");
  });

  it("applies only the migrations added since the last run", async () => {
    const schema = freshSchema();
    expect(await migrateSchema(database.handle.root, schema, { "001_widgets": migrations["001_widgets"]! })).toEqual(["001_widgets"]);
    expect(await migrateSchema(database.handle.root, schema, migrations)).toEqual(["002_gadgets"]);
  });

  it("keeps schemas apart: the same migrations run separately per schema", async () => {
    const a = freshSchema();
    const b = freshSchema();
    expect(await migrateSchema(database.handle.root, a, migrations)).toHaveLength(2);
    expect(await migrateSchema(database.handle.root, b, migrations)).toHaveLength(2);
  });

  it("fails on a broken migration and leaves later ones unapplied", async () => {
    const schema = freshSchema();
    const broken: MigrationSet = {
      "001_widgets": migrations["001_widgets"]!,
      "002_broken": {
        async up(db) {
          await sql`select * from no_such_table`.execute(db);
        },
      },
      "003_never": migrations["002_gadgets"]!,
    };
    await expect(migrateSchema(database.handle.root, schema, broken)).rejects.toThrow(/no_such_table/);
    expect(await tablesIn(database.handle.root, schema)).not.toContain("gadgets");
  });

  it("is safe to run from several processes at once", async () => {
    const other = await openDatabase({ url: database.url, maxConnections: 4 });
    try {
      for (let round = 0; round < 5; round++) {
        const schema = freshSchema();
        const results = await Promise.all([
          migrateSchema(database.handle.root, schema, migrations),
          migrateSchema(other.root, schema, migrations),
          migrateSchema(other.root, schema, migrations),
        ]);
        // Each migration was applied by exactly one of them.
        expect(results.flat().sort()).toEqual(["001_widgets", "002_gadgets"]);
      }
    } finally {
      await other.close();
    }
  });
});

describe("forSchema", () => {
  it("puts and finds unqualified tables in the schema", async () => {
    const schema = freshSchema();
    await database.handle.root.schema.createSchema(schema).execute();
    const db = forSchema<{ things: { id: string; n: number } }>(database.handle.root, schema);
    await db.schema.createTable("things").addColumn("id", "text", (c) => c.primaryKey()).addColumn("n", "integer").execute();
    await db.insertInto("things").values({ id: "a", n: 1 }).execute();
    expect(await tablesIn(database.handle.root, schema)).toEqual(["things"]);
    expect(await db.selectFrom("things").selectAll().execute()).toEqual([{ id: "a", n: 1 }]);
    // Unqualified, from the root, the table is not there.
    await expect(sql`select * from things`.execute(database.handle.root)).rejects.toThrow(/does not exist/);
    const { rows } = await sql<{ id: string }>`select id from ${sql.id(schema, "things")}`.execute(database.handle.root);
    expect(rows).toEqual([{ id: "a" }]);
  });

  it("runs transactions in the schema that commit or roll back", async () => {
    const schema = freshSchema();
    await database.handle.root.schema.createSchema(schema).execute();
    const db = forSchema<{ things: { id: string } }>(database.handle.root, schema);
    await db.schema.createTable("things").addColumn("id", "text", (c) => c.primaryKey()).execute();
    await db.transaction().execute((trx) => trx.insertInto("things").values({ id: "kept" }).execute());
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("things").values({ id: "dropped" }).execute();
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect(await db.selectFrom("things").select("id").execute()).toEqual([{ id: "kept" }]);
  });
});

describe("openDatabase", () => {
  it("opens Postgres from a URL and reads bigint counts as numbers", async () => {
    expect(database.handle.kind).toBe("postgres");
    const { rows } = await sql<{ n: number }>`select count(*) as n from generate_series(1, 3)`.execute(database.handle.root);
    expect(rows[0]!.n).toBe(3);
  });

  it("without a URL, opens an in-memory PGlite that runs transactions", async () => {
    const handle = await openDatabase({});
    try {
      expect(handle.kind).toBe("pglite");
      const db = handle.root as Kysely<{ notes: { id: string; body: string } }>;
      await db.schema.createTable("notes").addColumn("id", "text", (c) => c.primaryKey()).addColumn("body", "text").execute();
      await db.transaction().execute(async (trx) => {
        await trx.insertInto("notes").values({ id: "1", body: "kept" }).execute();
      });
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.insertInto("notes").values({ id: "2", body: "dropped" }).execute();
          throw new Error("roll back");
        }),
      ).rejects.toThrow("roll back");
      expect(await db.selectFrom("notes").selectAll().execute()).toEqual([{ id: "1", body: "kept" }]);
      const { rows } = await sql<{ n: number }>`select count(*) as n from notes`.execute(handle.root);
      expect(rows[0]!.n).toBe(1);
      // Migrations work on it as on Postgres.
      expect(await migrateSchema(handle.root, "svc", migrations)).toEqual(["001_widgets", "002_gadgets"]);
      expect(await migrateSchema(handle.root, "svc", migrations)).toEqual([]);
    } finally {
      await handle.close();
    }
  });

  it("a second in-memory database is empty", async () => {
    const first = await openDatabase({});
    const second = await openDatabase({});
    try {
      await sql`create table only_in_first (id int)`.execute(first.root);
      await expect(sql`select * from only_in_first`.execute(second.root)).rejects.toThrow(/does not exist/);
    } finally {
      await first.close();
      await second.close();
    }
  });
});

describe("prepared statements on Postgres", () => {
  // One connection, so every statement below runs on the backend that pg_prepared_statements describes.
  let single: DatabaseHandle;

  beforeAll(async () => {
    single = await openDatabase({ url: database.url, maxConnections: 1 });
  });

  afterAll(async () => {
    await single?.close();
  });

  interface PreparedStatement {
    name: string;
    statement: string;
    runs: number;
  }

  async function preparedStatements(root: Kysely<any>): Promise<PreparedStatement[]> {
    const { rows } = await sql<PreparedStatement>`
      select name, statement, (generic_plans + custom_plans)::int as runs from pg_prepared_statements order by prepare_time`.execute(root);
    return rows;
  }

  async function preparedRunsOf(root: Kysely<any>, text: string): Promise<number | undefined> {
    return (await preparedStatements(root)).find((prepared) => prepared.statement === text)?.runs;
  }

  it("parses a parameterised statement once per connection and runs it again by name", async () => {
    const query = (n: number) => sql<{ doubled: number }>`select ${n}::int * 2 as doubled`;
    expect((await query(2).execute(single.root)).rows).toEqual([{ doubled: 4 }]);
    expect((await query(5).execute(single.root)).rows).toEqual([{ doubled: 10 }]);
    const text = query(0).compile(single.root).sql;
    const prepared = (await preparedStatements(single.root)).filter((statement) => statement.statement === text);
    expect(prepared).toEqual([{ name: statementName(text), statement: text, runs: 2 }]);
  });

  it("leaves statements without parameters unnamed", async () => {
    await sql`select 'no parameters' as label`.execute(single.root);
    expect((await preparedStatements(single.root)).map((prepared) => prepared.statement)).not.toContain("select 'no parameters' as label");
  });

  it("prepares at most the cap of distinct texts per connection; later texts still answer, unnamed", async () => {
    const root = new Kysely<any>({
      dialect: new PostgresDialect({ pool: withPreparedStatements(new pg.Pool({ connectionString: database.url, max: 1 }), 3) }),
    });
    try {
      // Each differs in its text, as statements with IN lists of different lengths do.
      const query = (width: number) => sql<{ total: number }>`select ${sql.join(Array.from({ length: width }, (_, i) => sql`${i + 1}::int`), sql` + `)} as total`;
      for (let round = 0; round < 2; round++) {
        for (let width = 1; width <= 6; width++) {
          expect((await query(width).execute(root)).rows).toEqual([{ total: (width * (width + 1)) / 2 }]);
        }
      }
      const prepared = await preparedStatements(root);
      expect(prepared.map((statement) => statement.statement)).toEqual([1, 2, 3].map((width) => query(width).compile(root).sql));
      expect(prepared.map((statement) => statement.runs)).toEqual([2, 2, 2]);
    } finally {
      await root.destroy();
    }
  });

  it("runs prepared statements in transactions that commit, roll back, and survive a failed statement", async () => {
    const schema = freshSchema();
    await single.root.schema.createSchema(schema).execute();
    const db = forSchema<{ items: { id: string; n: number } }>(single.root, schema);
    await db.schema.createTable("items").addColumn("id", "text", (c) => c.primaryKey()).addColumn("n", "integer", (c) => c.notNull()).execute();
    const insert = (trx: Kysely<{ items: { id: string; n: number } }>, id: string, n: number) => trx.insertInto("items").values({ id, n }).execute();

    await db.transaction().execute(async (trx) => {
      await insert(trx, "a", 1);
      await insert(trx, "b", 2);
    });
    await expect(
      db.transaction().execute(async (trx) => {
        await insert(trx, "c", 3);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    // A statement that fails after it was prepared rolls its transaction back; the statement stays usable.
    await expect(
      db.transaction().execute(async (trx) => {
        await insert(trx, "d", 4);
        await insert(trx, "a", 5);
      }),
    ).rejects.toThrow(/duplicate key/);
    await insert(db, "e", 5);

    expect(await db.selectFrom("items").selectAll().orderBy("id").execute()).toEqual([
      { id: "a", n: 1 },
      { id: "b", n: 2 },
      { id: "e", n: 5 },
    ]);
    expect(await preparedRunsOf(single.root, db.insertInto("items").values({ id: "", n: 0 }).compile().sql)).toBe(6);
  });

  it("recovers from a table changed under a prepared statement on the next connection", async () => {
    const schema = freshSchema();
    await single.root.schema.createSchema(schema).execute();
    const db = forSchema<{ gauges: { id: string; reading?: number } }>(single.root, schema);
    await db.schema.createTable("gauges").addColumn("id", "text", (c) => c.primaryKey()).execute();
    await db.insertInto("gauges").values({ id: "g1" }).execute();
    const read = () => db.selectFrom("gauges").selectAll().where("id", "=", "g1").execute();
    expect(await read()).toEqual([{ id: "g1" }]);

    await db.schema.alterTable("gauges").addColumn("reading", "integer", (c) => c.notNull().defaultTo(7)).execute();
    // Postgres refuses the statement prepared before the change once; the connection is then replaced.
    await expect(read()).rejects.toThrow(/cached plan must not change result type/);
    expect(await read()).toEqual([{ id: "g1", reading: 7 }]);
  });

  it("upserts against a partial unique index when the ON CONFLICT predicate is a literal", async () => {
    const schema = freshSchema();
    await single.root.schema.createSchema(schema).execute();
    await sql`create table ${sql.id(schema, "claims")} (key text not null, state text not null)`.execute(single.root);
    await sql`create unique index on ${sql.id(schema, "claims")} (key) where state = 'active'`.execute(single.root);
    const db = forSchema<{ claims: { key: string; state: string } }>(single.root, schema);
    const claim = (key: string) =>
      db
        .insertInto("claims")
        .values({ key, state: "active" })
        .onConflict((oc) => oc.column("key").where("state", "=", sql.lit("active")).doNothing())
        .returning("key");

    // Past the first five runs, after which Postgres may switch a prepared statement to a generic plan.
    const claimed: string[] = [];
    for (let run = 0; run < 8; run++) claimed.push(...(await claim(run % 2 === 0 ? "even" : "odd").execute()).map((row) => row.key));
    expect(claimed).toEqual(["even", "odd"]);
    expect(await preparedRunsOf(single.root, claim("").compile().sql)).toBe(8);

    // Why the literal matters: with a parameter there, the generic plan cannot match the index.
    await expect(
      (async () => {
        for (let run = 0; run < 8; run++) {
          await db
            .insertInto("claims")
            .values({ key: "even", state: "active" })
            .onConflict((oc) => oc.column("key").where("state", "=", "active").doNothing())
            .execute();
        }
      })(),
    ).rejects.toThrow(/no unique or exclusion constraint matching the ON CONFLICT specification/);
  });
});

describe("newId", () => {
  it("makes unique ids with the prefix and 32 hex digits", () => {
    const ids = Array.from({ length: 1000 }, () => newId("pool"));
    for (const id of ids) expect(id).toMatch(/^pool_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1000);
  });
});
