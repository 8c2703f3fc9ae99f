import type { Kysely } from "kysely";
import { clsMetrics, observeGauge } from "@cls/telemetry";
import type { AllocationDatabase } from "./database.js";

export type LicenceOutcome = "granted" | "refused" | "released" | "revoked" | "reclaimed";

/** Counts licence events per pool and type. */
export function countLicences(outcome: LicenceOutcome, rows: readonly { pool_id: string | null; licence_type: string }[]): void {
  for (const row of rows) {
    if (row.pool_id) clsMetrics().allocations.add(1, { outcome, pool_id: row.pool_id, licence_type: row.licence_type });
  }
}

/** Pool capacity and use, and outbox lag, read from Postgres when metrics are scraped. */
export function observeAllocationGauges(db: Kysely<AllocationDatabase>): () => void {
  const usage = () => db.selectFrom("pool_usage").select(["pool_id", "licence_type", "capacity", "used"]).execute();
  const stops = [
    observeGauge("cls_pool_used", "Licences in use per pool and type", async () =>
      (await usage()).map((row) => ({ value: row.used, attributes: { pool_id: row.pool_id, licence_type: row.licence_type } })),
    ),
    observeGauge("cls_pool_capacity", "Licences purchased per pool and type", async () =>
      (await usage()).map((row) => ({ value: row.capacity, attributes: { pool_id: row.pool_id, licence_type: row.licence_type } })),
    ),
  ];
  return () => stops.forEach((stop) => stop());
}
