import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ServerSchema, ServerState, type Server } from "@cls/proto";
import type { ServerTable } from "./database.js";

/** A server as the API shows it; never its key. */
export function toServerMessage(row: ServerTable): Server {
  return create(ServerSchema, {
    serverId: row.server_id,
    accountId: row.account_id,
    poolId: row.pool_id,
    name: row.name,
    state: row.state === "active" ? ServerState.ACTIVE : ServerState.REVOKED,
    enrolledAt: timestampFromDate(row.enrolled_at),
    ...(row.revoked_at ? { revokedAt: timestampFromDate(row.revoked_at) } : {}),
  });
}
