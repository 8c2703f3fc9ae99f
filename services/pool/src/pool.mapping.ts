import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EncoderKind, EncoderModelSchema, PoolSchema, type EncoderModel, type Pool } from "@cls/proto";
import type { EncoderModelTable } from "./database.js";
import type { PoolRecord } from "./pool.repository.js";

/** A pool as the API shows it; `used` comes from the allocation service. */
export function toPoolMessage(pool: PoolRecord, used: Record<string, number> = {}): Pool {
  return create(PoolSchema, {
    poolId: pool.pool_id,
    accountId: pool.account_id,
    name: pool.name,
    expiresAt: timestampFromDate(pool.expires_at),
    version: BigInt(pool.version),
    entitlements: [...pool.totals].map(([licenceType, total]) => {
      const inUse = used[licenceType] ?? 0;
      return { licenceType, total, used: inUse, free: Math.max(0, total - inUse) };
    }),
  });
}

export function toEncoderModelMessage(row: EncoderModelTable): EncoderModel {
  return create(EncoderModelSchema, {
    model: row.model,
    licenceType: row.licence_type,
    kind: row.kind === "hardware" ? EncoderKind.HARDWARE : EncoderKind.CONTAINER,
    minV9Version: row.min_v9_version,
  });
}
