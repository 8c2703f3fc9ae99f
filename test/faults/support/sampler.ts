import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { USAGE_SQL, type UsageRecord } from "./database-state.js";

export interface SampleReport {
  samples: number;
  /** Samples that could not be taken (Postgres restarting, say). */
  failed: number;
  violations: string[];
}

/**
 * Reads capacity, used and the active count of every pool, over and over from its own
 * connection while the clients run, and notes every sample where a pool has more active
 * allocations than its capacity or `used` differs from the active count (SPEC L7a: "at
 * any point").
 */
export function startSampler(url: string): { stop(): Promise<SampleReport> } {
  const report: SampleReport = { samples: 0, failed: 0, violations: [] };
  let stopping = false;
  const note = (message: string) => {
    if (report.violations.length < 20) report.violations.push(message);
  };
  const done = (async () => {
    let client: pg.Client | undefined;
    while (!stopping) {
      try {
        if (!client) {
          client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
          client.on("error", () => {});
          await client.connect();
        }
        const { rows } = await client.query<UsageRecord>(USAGE_SQL);
        report.samples++;
        for (const row of rows) {
          if (row.active > row.capacity) note(`sample ${report.samples}: pool ${row.pool_id}/${row.licence_type} has ${row.active} active allocations, capacity ${row.capacity}`);
          if (row.used !== row.active) note(`sample ${report.samples}: pool ${row.pool_id}/${row.licence_type} has used=${row.used} but ${row.active} active allocations`);
          if (row.used > row.capacity) note(`sample ${report.samples}: pool ${row.pool_id}/${row.licence_type} has used=${row.used} above capacity ${row.capacity}`);
        }
        await sleep(20);
      } catch {
        report.failed++;
        await client?.end().catch(() => {});
        client = undefined;
        await sleep(100);
      }
    }
    await client?.end().catch(() => {});
  })();
  return {
    async stop() {
      stopping = true;
      await done;
      return report;
    },
  };
}
