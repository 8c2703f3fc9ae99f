import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Kysely } from "kysely";
import { newId } from "@cls/db";

export interface AuditTable {
  audit_id: string;
  actor: string;
  action: string;
  account_id: string | null;
  subject: string;
  detail: unknown;
  occurred_at: Date;
}

/** One recorded change: who did what to which thing, and when. */
export interface AuditRecord {
  actor: string;
  action: string;
  accountId: string | null;
  subject: string;
  detail: Record<string, unknown>;
  occurredAt: Date;
}

/** Creates the audit table; called from a service's migration. */
export async function createAuditTable(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("audit")
    .addColumn("audit_id", "text", (c) => c.primaryKey())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("account_id", "text")
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("detail", "jsonb", (c) => c.notNull())
    .addColumn("occurred_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_account_time").on("audit").columns(["account_id", "occurred_at"]).execute();
}

/** Any service database with an `audit` table (or a transaction on one). */
export type WithAudit = Kysely<any>;

/** Records a change in the caller's transaction, so the trail and the change commit together. */
export async function recordAudit(trx: WithAudit, record: AuditRecord): Promise<void> {
  await (trx as Kysely<{ audit: AuditTable }>)
    .insertInto("audit")
    .values({
      audit_id: newId("aud"),
      actor: record.actor,
      action: record.action,
      account_id: record.accountId,
      subject: record.subject,
      detail: JSON.stringify(record.detail),
      occurred_at: record.occurredAt,
    })
    .execute();
}

/** An audit entry as the API returns it. */
export interface AuditEntryView {
  auditId: string;
  actor: string;
  action: string;
  accountId: string;
  subject: string;
  detailJson: string;
  occurredAt: Timestamp;
}

/** The newest entries first, optionally for one account. */
export async function listAudit(
  db: WithAudit,
  options: { accountId?: string; limit: number },
): Promise<AuditEntryView[]> {
  let query = (db as Kysely<{ audit: AuditTable }>).selectFrom("audit").selectAll().orderBy("occurred_at", "desc").orderBy("audit_id").limit(options.limit);
  if (options.accountId) query = query.where("account_id", "=", options.accountId);
  const rows = await query.execute();
  return rows.map((row) => ({
    auditId: row.audit_id,
    actor: row.actor,
    action: row.action,
    accountId: row.account_id ?? "",
    subject: row.subject,
    detailJson: typeof row.detail === "string" ? row.detail : JSON.stringify(row.detail),
    occurredAt: timestampFromDate(row.occurred_at),
  }));
}
