import type { AuditTable } from "@cls/audit";
import type { OutboxTable } from "@cls/outbox";

/** The pool service's schema. */
export const POOL_SCHEMA = "pool";

export interface AccountTable {
  account_id: string;
  name: string;
  created_at: Date;
}

export interface LicenceTypeTable {
  licence_type: string;
  description: string;
  created_at: Date;
}

export interface EncoderModelTable {
  model: string;
  licence_type: string;
  kind: "hardware" | "container";
  min_v9_version: string;
  updated_at: Date;
  /** False until the allocation service has this row's latest form. */
  synced: boolean;
}

export interface PoolTable {
  pool_id: string;
  account_id: string;
  name: string;
  expires_at: Date;
  version: number;
  /** The last version the allocation service acknowledged. */
  synced_version: number;
  created_at: Date;
}

export interface PoolEntitlementTable {
  pool_id: string;
  licence_type: string;
  total: number;
}

export interface ExpiryNoticeTable {
  pool_id: string;
  expires_at: Date;
  /** "30d", "7d", "1d" or "expired". */
  notice: string;
  sent_at: Date;
}

export interface PoolDatabase {
  expiry_notices: ExpiryNoticeTable;
  accounts: AccountTable;
  licence_types: LicenceTypeTable;
  encoder_models: EncoderModelTable;
  pools: PoolTable;
  pool_entitlements: PoolEntitlementTable;
  audit: AuditTable;
  outbox: OutboxTable;
}
