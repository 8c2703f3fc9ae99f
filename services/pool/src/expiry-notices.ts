import type { Kysely } from "kysely";
import { DAY_MS, type Clock } from "@cls/clock";
import { recordEvents } from "@cls/outbox";
import type { PoolDatabase } from "./database.js";

/** When customers hear about a pool's expiry (SPEC L5): 30, 7 and 1 days before, and at it. */
export const EXPIRY_NOTICES = [
  { notice: "30d", beforeMs: 30 * DAY_MS },
  { notice: "7d", beforeMs: 7 * DAY_MS },
  { notice: "1d", beforeMs: 1 * DAY_MS },
  { notice: "expired", beforeMs: 0 },
] as const;

/**
 * Sends every expiry notice that is due and not yet sent, each exactly once: the notice row
 * and its event are written in one transaction, and the notice's key refuses a second one,
 * so replicas running this at the same time cannot both send it. Only the most imminent due
 * notice is sent for a pool: a pool created 3 days before expiry is told "7d", not also "30d".
 */
export async function sendExpiryNotices(deps: { db: Kysely<PoolDatabase>; clock: Clock }): Promise<number> {
  const now = deps.clock.now();
  const horizon = new Date(now.getTime() + EXPIRY_NOTICES[0].beforeMs);
  const pools = await deps.db.selectFrom("pools").select(["pool_id", "account_id", "name", "expires_at"]).where("expires_at", "<=", horizon).execute();
  let sent = 0;
  for (const pool of pools) {
    const due = [...EXPIRY_NOTICES].reverse().find((n) => now.getTime() >= pool.expires_at.getTime() - n.beforeMs);
    if (!due) continue;
    const wrote = await deps.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto("expiry_notices")
        .values({ pool_id: pool.pool_id, expires_at: pool.expires_at, notice: due.notice, sent_at: now })
        .onConflict((oc) => oc.columns(["pool_id", "expires_at", "notice"]).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await recordEvents(trx, [
        {
          accountId: pool.account_id,
          type: due.notice === "expired" ? "pool.expired" : "pool.expiring",
          data: { pool_id: pool.pool_id, name: pool.name, expires_at: pool.expires_at.toISOString(), notice: due.notice },
          occurredAt: now,
        },
      ]);
      return true;
    });
    if (wrote) sent++;
  }
  return sent;
}
