import { sql } from "kysely";
import { DAY_MS } from "@cls/clock";
import { recordEvents } from "@cls/outbox";
import type { AllocationContext } from "./context.js";

/** A server that has made no daily check for this long is reported (SPEC L15). */
export const SILENCE_MS = 7 * DAY_MS;

/**
 * Tells customers about servers silent for more than 7 days, once per silence: the marker
 * and the event commit together, and rows are taken with SKIP LOCKED so replicas share the work.
 */
export async function notifySilentServers(ctx: AllocationContext): Promise<number> {
  const now = ctx.clock.now();
  const cutoff = new Date(now.getTime() - SILENCE_MS);
  const notified = await ctx.db.transaction().execute(async (trx) => {
    const lastContact = sql<Date>`coalesce(last_check_at, bound_at)`;
    const silent = await trx
      .selectFrom("servers")
      .select(["server_id", "account_id", "pool_id", "last_check_at", "bound_at"])
      .where("state", "=", "active")
      .where(lastContact, "<", cutoff)
      .where((eb) => eb.or([eb("silence_notified_at", "is", null), eb("silence_notified_at", "<", lastContact)]))
      .limit(1_000)
      .forUpdate()
      .skipLocked()
      .execute();
    if (silent.length === 0) return 0;
    await trx.updateTable("servers").set({ silence_notified_at: now }).where("server_id", "in", silent.map((s) => s.server_id)).execute();
    await recordEvents(
      trx,
      silent.map((server) => ({
        accountId: server.account_id,
        type: "server.silent",
        data: { server_id: server.server_id, pool_id: server.pool_id, last_contact_at: (server.last_check_at ?? server.bound_at).toISOString() },
        occurredAt: now,
      })),
    );
    return silent.length;
  });
  if (notified > 0) ctx.outbox.kick();
  return notified;
}
