import type { Kysely } from "kysely";
import type { ApiKeyTable, ServerIdentityDatabase } from "./database.js";

type Db = Kysely<ServerIdentityDatabase>;

export async function insertApiKey(db: Db, row: ApiKeyTable): Promise<void> {
  await db.insertInto("api_keys").values(row).execute();
}

export async function findApiKey(db: Db, keyId: string, options: { forUpdate?: boolean } = {}): Promise<ApiKeyTable | undefined> {
  let query = db.selectFrom("api_keys").selectAll().where("key_id", "=", keyId);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function listAccountApiKeys(db: Db, accountId: string): Promise<ApiKeyTable[]> {
  return db.selectFrom("api_keys").selectAll().where("account_id", "=", accountId).orderBy("created_at").orderBy("key_id").execute();
}

export async function markApiKeyRevoked(db: Db, keyId: string, revokedAt: Date): Promise<void> {
  await db.updateTable("api_keys").set({ revoked_at: revokedAt }).where("key_id", "=", keyId).execute();
}
