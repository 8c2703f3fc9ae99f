import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ApiKeySchema, type ApiKey } from "@cls/proto";
import type { ApiKeyTable } from "./database.js";

/** An API key as the API shows it; never its secret or hash. */
export function toApiKeyMessage(row: ApiKeyTable): ApiKey {
  return create(ApiKeySchema, {
    keyId: row.key_id,
    accountId: row.account_id,
    name: row.name,
    createdAt: timestampFromDate(row.created_at),
    ...(row.revoked_at ? { revokedAt: timestampFromDate(row.revoked_at) } : {}),
  });
}
