import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "@cls/db";
import { seedAccount, startTestMesh, type TestMesh } from "../support/mesh.js";
import { DAY, customerClients, drainOutboxes, enrollServer, runAllJobs } from "./support.js";

/** Name parts of a column that would hold where a request came from. */
const ADDRESS_WORDS = new Set(["ip", "ipv4", "ipv6", "ips", "addr", "address", "addresses", "remote", "peer", "forwarded", "xff", "origin", "host", "hostname"]);

/**
 * FAQ: "The only information that is stored by Digital Barriers is the information required
 * for us to enforce licensing, and for you to manage your licences. No IP addresses are
 * stored." (Whether an address turns up in any stored value, log or trace is checked by the
 * privacy test of issue 4; this scenario checks the shape of what CLS stores.)
 */
describe("What information is collected and stored by CLS?", () => {
  let t: TestMesh;
  beforeAll(async () => {
    t = await startTestMesh({ layout: "port-per-service" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("no table has a place for an IP address", async () => {
    // Exercise every kind of write first, so lazily created tables exist too.
    const { accountId, poolId } = await seedAccount(t, { count: 1 });
    const server = await enrollServer(t, accountId, poolId);
    await server.registerEncoder("enc-1", "HD-IP200", "9.2");
    await server.addCamera("enc-1", "cam-1");
    await server.addCamera("enc-1", "cam-2").catch(() => undefined);
    await (await customerClients(t, accountId)).pools.listPools({});
    t.clock.advance(8 * DAY);
    await runAllJobs(t);
    await drainOutboxes(t);

    const { rows } = await sql<{ table_schema: string; table_name: string; column_name: string; data_type: string; udt_name: string }>`
      select table_schema, table_name, column_name, data_type, udt_name
      from information_schema.columns
      where table_schema not in ('pg_catalog', 'information_schema') and table_schema not like 'pg_%'`.execute(t.database.handle.root);
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.table_schema))).toEqual(new Set(["pool", "allocation", "server_identity", "notification"]));

    // SPEC L13: no column named for an address, and no column of an address type.
    const suspicious = rows.filter(
      (r) => r.column_name.toLowerCase().split(/[^a-z0-9]+/).some((word) => ADDRESS_WORDS.has(word)) || ["inet", "cidr", "macaddr", "macaddr8"].includes(r.udt_name),
    );
    expect(suspicious.map((r) => `${r.table_schema}.${r.table_name}.${r.column_name} (${r.udt_name})`)).toEqual([]);
  });
});
