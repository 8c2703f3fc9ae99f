import { randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { newId } from "./ids.js";
import { migrateSchema, type MigrationSet } from "./migrate.js";
import { forSchema, openDatabase } from "./open.js";

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

describe("newId", () => {
  it("makes unique ids with the prefix and 32 hex digits", () => {
    const ids = Array.from({ length: 1000 }, () => newId("pool"));
    for (const id of ids) expect(id).toMatch(/^pool_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1000);
  });
});
