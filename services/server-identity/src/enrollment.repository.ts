import type { Kysely } from "kysely";
import type { EnrollmentCodeTable, ServerIdentityDatabase } from "./database.js";

type Db = Kysely<ServerIdentityDatabase>;

export async function insertEnrollmentCode(db: Db, row: EnrollmentCodeTable): Promise<void> {
  await db.insertInto("enrollment_codes").values(row).execute();
}

export async function findEnrollmentCode(db: Db, codeHash: string): Promise<EnrollmentCodeTable | undefined> {
  return db.selectFrom("enrollment_codes").selectAll().where("code_hash", "=", codeHash).executeTakeFirst();
}

/**
 * Marks a code used by `serverId` if it is unused and unexpired at `now`, in one statement,
 * so two enrollments racing on one code cannot both win. Undefined when it was not claimable.
 */
export async function claimEnrollmentCode(
  db: Db,
  codeHash: string,
  serverId: string,
  now: Date,
): Promise<Pick<EnrollmentCodeTable, "account_id" | "pool_id"> | undefined> {
  return db
    .updateTable("enrollment_codes")
    .set({ used_at: now, used_by_server_id: serverId })
    .where("code_hash", "=", codeHash)
    .where("used_at", "is", null)
    .where("expires_at", ">", now)
    .returning(["account_id", "pool_id"])
    .executeTakeFirst();
}
