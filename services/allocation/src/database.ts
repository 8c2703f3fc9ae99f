import type { ColumnType, Generated } from "kysely";
import type { AuditTable } from "@cls/audit";
import type { OutboxTable } from "@cls/outbox";

/** The allocation service's schema. */
export const ALLOCATION_SCHEMA = "allocation";

export type LicenceKindColumn = "pool" | "legacy";
export type AllocationStateColumn = "active" | "released" | "revoked" | "reclaimed";

/** Which pool an enrolled server draws from (pushed by server-identity, changed by a switch). */
export interface ServerTable {
  server_id: string;
  account_id: string;
  pool_id: string;
  state: "active" | "revoked";
  bound_at: Date;
  revoked_at: Date | null;
  last_check_at: Date | null;
  silence_notified_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

/** The local copy of a pool's head, kept current by the pool service (by version). */
export interface PoolCopyTable {
  pool_id: string;
  account_id: string;
  expires_at: Date;
  version: number;
}

/** Capacity and use of one licence type in one pool: the row every grant updates. */
export interface PoolUsageTable {
  pool_id: string;
  licence_type: string;
  capacity: number;
  used: ColumnType<number, number | undefined, number>;
  /** The highest lock fence that has written this row. */
  fence: ColumnType<number, number | undefined, number>;
  expires_at: Date;
}

export interface EncoderModelCopyTable {
  model: string;
  licence_type: string;
  kind: "hardware" | "container";
  min_v9_version: string;
}

export interface EncoderTable {
  server_id: string;
  encoder_id: string;
  model: string;
  firmware_version: string;
  highest_version_seen: string;
  licence_kind: LicenceKindColumn;
  registered_at: Date;
  last_check_at: Date | null;
}

export interface AllocationTable {
  allocation_id: string;
  account_id: string;
  /** Null for a legacy licence, which belongs to no pool. */
  pool_id: string | null;
  server_id: string;
  encoder_id: string;
  camera_id: string;
  licence_type: string;
  kind: LicenceKindColumn;
  state: AllocationStateColumn;
  acquired_at: Date;
  /** Taken from the lease_serial sequence when not given. */
  lease_serial: ColumnType<number, number | undefined, number>;
  /** Null for a perpetual legacy licence. */
  lease_expires_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  /** Orders grants made in the same instant: newest-first revocation needs a strict order. */
  grant_seq: Generated<number>;
}

export interface AllocationDatabase {
  servers: ServerTable;
  pools: PoolCopyTable;
  pool_usage: PoolUsageTable;
  encoder_models: EncoderModelCopyTable;
  encoders: EncoderTable;
  allocations: AllocationTable;
  audit: AuditTable;
  outbox: OutboxTable;
}
