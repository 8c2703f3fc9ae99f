import type { Kysely } from "kysely";
import type { ServerIdentityDatabase, ServerTable } from "./database.js";

type Db = Kysely<ServerIdentityDatabase>;

export async function insertServer(db: Db, server: ServerTable): Promise<void> {
  await db
    .insertInto("servers")
    .values({ ...server, public_key: Buffer.from(server.public_key) })
    .execute();
}

export async function findServer(db: Db, serverId: string, options: { forUpdate?: boolean } = {}): Promise<ServerTable | undefined> {
  let query = db.selectFrom("servers").selectAll().where("server_id", "=", serverId);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function listAccountServers(db: Db, accountId: string): Promise<ServerTable[]> {
  return db.selectFrom("servers").selectAll().where("account_id", "=", accountId).orderBy("enrolled_at").orderBy("server_id").execute();
}

export async function markServerRevoked(db: Db, serverId: string, revokedAt: Date): Promise<void> {
  await db.updateTable("servers").set({ state: "revoked", revoked_at: revokedAt }).where("server_id", "=", serverId).execute();
}

/** Replaces a server's key (SPEC L11: key rotation). */
export async function updateServerKey(db: Db, serverId: string, publicKey: Uint8Array, rotatedAt: Date): Promise<void> {
  await db.updateTable("servers").set({ public_key: Buffer.from(publicKey), key_rotated_at: rotatedAt }).where("server_id", "=", serverId).execute();
}
