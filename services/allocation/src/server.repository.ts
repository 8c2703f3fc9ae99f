import type { Kysely } from "kysely";
import type { Selectable } from "kysely";
import type { AllocationDatabase, ServerTable } from "./database.js";

export type ServerRow = Selectable<ServerTable>;
import { NotFoundError } from "@cls/errors";
import { ServerRevokedError, ServerWithoutPoolError } from "./errors.js";

type Db = Kysely<AllocationDatabase>;

export async function findServer(db: Db, serverId: string, options: { forUpdate?: boolean } = {}): Promise<ServerRow | undefined> {
  let query = db.selectFrom("servers").selectAll().where("server_id", "=", serverId);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

/** The calling server's binding; revoked or unbound servers are refused. */
export async function requireActiveServer(db: Db, serverId: string, options: { forUpdate?: boolean } = {}): Promise<ServerRow> {
  const server = await findServer(db, serverId, options);
  if (!server) throw new ServerWithoutPoolError();
  if (server.state === "revoked") throw new ServerRevokedError();
  return server;
}

/**
 * A server of the caller's account, for management calls. Another account's server is
 * `not_found`, exactly like one that does not exist, so nothing about it leaks.
 */
export async function requireAccountServer(db: Db, accountId: string, serverId: string, options: { forUpdate?: boolean } = {}): Promise<ServerRow> {
  const server = await findServer(db, serverId, options);
  if (!server || server.account_id !== accountId) throw new NotFoundError(`server ${serverId}`);
  if (server.state === "revoked") throw new ServerRevokedError();
  return server;
}

/** Records a binding; a repeat with the same values changes nothing. */
export async function bindServer(db: Db, row: Pick<ServerTable, "server_id" | "account_id" | "pool_id" | "bound_at">): Promise<void> {
  await db
    .insertInto("servers")
    .values({ ...row, state: "active", revoked_at: null, last_check_at: null })
    .onConflict((oc) => oc.column("server_id").doNothing())
    .execute();
}

export async function markServerRevoked(db: Db, serverId: string, at: Date): Promise<boolean> {
  const result = await db
    .updateTable("servers")
    .set({ state: "revoked", revoked_at: at })
    .where("server_id", "=", serverId)
    .where("state", "=", "active")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function setServerPool(db: Db, serverId: string, poolId: string): Promise<void> {
  await db.updateTable("servers").set({ pool_id: poolId }).where("server_id", "=", serverId).execute();
}

export async function touchServerCheck(db: Db, serverId: string, at: Date): Promise<void> {
  await db.updateTable("servers").set({ last_check_at: at }).where("server_id", "=", serverId).execute();
}
