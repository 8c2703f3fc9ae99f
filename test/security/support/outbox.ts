import { vi } from "vitest";
import type { RunningMesh } from "@cls/all-in-one";
import { query } from "./database.js";

/**
 * Waits until every service's outbox has delivered every event it holds to the notification
 * service, so that what follows starts from a settled database.
 */
export async function drainOutboxes(t: { mesh: RunningMesh; database: { url: string } }): Promise<void> {
  const tables = await query<{ schema: string }>(
    t.database.url,
    "select table_schema as schema from information_schema.tables where table_name = 'outbox' and table_type = 'BASE TABLE'",
  );
  await vi.waitFor(
    async () => {
      for (const module of Object.values(t.mesh.modules) as { flushOutbox?: () => Promise<unknown> }[]) await module.flushOutbox?.();
      await t.mesh.modules.allocation.context.outbox.flush();
      for (const { schema } of tables) {
        const [row] = await query<{ pending: string }>(t.database.url, `select count(*) as pending from "${schema}".outbox where delivered_at is null`);
        if (Number(row!.pending) !== 0) throw new Error(`${schema}.outbox still holds ${row!.pending} undelivered events`);
      }
    },
    { timeout: 20_000, interval: 100 },
  );
}
