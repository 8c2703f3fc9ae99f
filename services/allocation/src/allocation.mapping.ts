import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AllocationSchema, AllocationState, EncoderSchema, LicenceKind, type Allocation, type Encoder } from "@cls/proto";
import type { AllocationStateColumn, EncoderTable, LicenceKindColumn } from "./database.js";
import type { AllocationRow } from "./allocation.repository.js";

const STATES: Record<AllocationStateColumn, AllocationState> = {
  active: AllocationState.ACTIVE,
  released: AllocationState.RELEASED,
  revoked: AllocationState.REVOKED,
  reclaimed: AllocationState.RECLAIMED,
};

const KINDS: Record<LicenceKindColumn, LicenceKind> = {
  pool: LicenceKind.POOL,
  legacy: LicenceKind.LEGACY,
};

export function toAllocationMessage(row: AllocationRow): Allocation {
  return create(AllocationSchema, {
    allocationId: row.allocation_id,
    accountId: row.account_id,
    poolId: row.pool_id ?? "",
    serverId: row.server_id,
    encoderId: row.encoder_id,
    cameraId: row.camera_id,
    licenceType: row.licence_type,
    kind: KINDS[row.kind],
    state: STATES[row.state],
    acquiredAt: timestampFromDate(row.acquired_at),
    ...(row.lease_expires_at ? { leaseExpiresAt: timestampFromDate(row.lease_expires_at) } : {}),
    ...(row.ended_at ? { endedAt: timestampFromDate(row.ended_at) } : {}),
    endReason: row.end_reason ?? "",
  });
}

export function toEncoderMessage(row: EncoderTable): Encoder {
  return create(EncoderSchema, {
    encoderId: row.encoder_id,
    model: row.model,
    firmwareVersion: row.firmware_version,
    highestVersionSeen: row.highest_version_seen,
    licenceKind: KINDS[row.licence_kind],
  });
}
