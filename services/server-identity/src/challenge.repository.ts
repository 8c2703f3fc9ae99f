import type { Kysely } from "kysely";
import type { ChallengeTable, ServerIdentityDatabase } from "./database.js";

type Db = Kysely<ServerIdentityDatabase>;

export async function insertChallenge(db: Db, row: ChallengeTable): Promise<void> {
  await db.insertInto("challenges").values(row).execute();
}

export async function findChallenge(db: Db, challengeId: string): Promise<ChallengeTable | undefined> {
  return db.selectFrom("challenges").selectAll().where("challenge_id", "=", challengeId).executeTakeFirst();
}

/** Marks a challenge used; false when it already was (a replay), so each one works once. */
export async function markChallengeUsed(db: Db, challengeId: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable("challenges")
    .set({ used_at: now })
    .where("challenge_id", "=", challengeId)
    .where("used_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Drops a server's challenges that can no longer be used, so the table stays small. */
export async function deleteExpiredChallenges(db: Db, serverId: string, now: Date): Promise<void> {
  await db.deleteFrom("challenges").where("server_id", "=", serverId).where("expires_at", "<=", now).execute();
}
