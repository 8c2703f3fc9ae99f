import type { Kysely } from "kysely";
import type { AccountTable, EncoderModelTable, LicenceTypeTable, PoolDatabase } from "./database.js";

type Db = Kysely<PoolDatabase>;

export async function insertAccount(db: Db, account: AccountTable): Promise<void> {
  await db.insertInto("accounts").values(account).execute();
}

export async function findAccount(db: Db, accountId: string): Promise<AccountTable | undefined> {
  return db.selectFrom("accounts").selectAll().where("account_id", "=", accountId).executeTakeFirst();
}

/** Inserts a licence type; false when it already existed. */
export async function insertLicenceType(db: Db, row: LicenceTypeTable): Promise<boolean> {
  const result = await db.insertInto("licence_types").values(row).onConflict((oc) => oc.column("licence_type").doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findLicenceType(db: Db, licenceType: string): Promise<LicenceTypeTable | undefined> {
  return db.selectFrom("licence_types").selectAll().where("licence_type", "=", licenceType).executeTakeFirst();
}

export async function listLicenceTypes(db: Db): Promise<LicenceTypeTable[]> {
  return db.selectFrom("licence_types").selectAll().orderBy("licence_type").execute();
}

/** Names among `licenceTypes` that the catalogue does not know. */
export async function unknownLicenceTypes(db: Db, licenceTypes: readonly string[]): Promise<string[]> {
  if (licenceTypes.length === 0) return [];
  const known = await db.selectFrom("licence_types").select("licence_type").where("licence_type", "in", licenceTypes).execute();
  const knownSet = new Set(known.map((row) => row.licence_type));
  return licenceTypes.filter((type) => !knownSet.has(type));
}

export async function upsertEncoderModel(db: Db, row: EncoderModelTable): Promise<void> {
  await db
    .insertInto("encoder_models")
    .values(row)
    .onConflict((oc) =>
      oc.column("model").doUpdateSet({
        licence_type: row.licence_type,
        kind: row.kind,
        min_v9_version: row.min_v9_version,
        updated_at: row.updated_at,
        synced: false,
      }),
    )
    .execute();
}

export async function listEncoderModels(db: Db, options: { unsyncedOnly?: boolean } = {}): Promise<EncoderModelTable[]> {
  let query = db.selectFrom("encoder_models").selectAll().orderBy("model");
  if (options.unsyncedOnly) query = query.where("synced", "=", false);
  return query.execute();
}

/** Marks a model synced, unless it changed again since `seenUpdatedAt`. */
export async function markModelSynced(db: Db, model: string, seenUpdatedAt: Date): Promise<void> {
  await db.updateTable("encoder_models").set({ synced: true }).where("model", "=", model).where("updated_at", "=", seenUpdatedAt).execute();
}
