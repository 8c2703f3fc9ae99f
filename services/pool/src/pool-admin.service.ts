import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { listAudit, recordAudit } from "@cls/audit";
import type { Clock } from "@cls/clock";
import { newId } from "@cls/db";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError } from "@cls/errors";
import { recordEvents, type OutboxRelay } from "@cls/outbox";
import { EncoderKind, type PoolAdminService } from "@cls/proto";
import { actorOf } from "@cls/server";
import { pageSize, requireCount, requireId, requireSlug, requireText, requireTimestamp } from "@cls/validation";
import type { AllocationSync } from "./allocation-sync.js";
import type { PoolDatabase } from "./database.js";
import { findPool, insertPool, listAccountPools, putTotals, updatePoolHead, type PoolRecord } from "./pool.repository.js";
import {
  findAccount,
  findLicenceType,
  insertAccount,
  insertLicenceType,
  listEncoderModels,
  listLicenceTypes,
  unknownLicenceTypes,
  upsertEncoderModel,
} from "./catalogue.repository.js";
import { toEncoderModelMessage, toPoolMessage } from "./pool.mapping.js";

export interface PoolAdminDeps {
  db: Kysely<PoolDatabase>;
  clock: Clock;
  logger: Logger;
  sync: AllocationSync;
  outbox: OutboxRelay;
}

const VERSION_PATTERN = /^\d{1,3}(\.\d{1,4}){0,2}$/;

function requireCounts(field: string, counts: Record<string, number>): Map<string, number> {
  const entries = Object.entries(counts);
  if (entries.length > 100) throw new InvalidArgumentError(field, "must name at most 100 licence types");
  return new Map(entries.map(([type, count]) => [requireSlug(`${field}[${type}]`, type), requireCount(`${field}[${type}]`, count)]));
}

/** Vendor staff tools (internal port): accounts, catalogue, pools and entitlement changes. */
export function createPoolAdminService(deps: PoolAdminDeps): ServiceImpl<typeof PoolAdminService> {
  const { db, clock } = deps;

  async function requireKnownTypes(types: readonly string[]): Promise<void> {
    const unknown = await unknownLicenceTypes(db, types);
    if (unknown.length > 0) throw new FailedPreconditionError(`unknown licence type: ${unknown.join(", ")}; create it first`);
  }

  /** Pushes the new entitlements so the very next request sees them (SPEC L4). */
  async function propagate(pool: PoolRecord): Promise<void> {
    deps.outbox.kick();
    try {
      await deps.sync.pushPool(pool);
    } catch (error) {
      deps.logger.warn({ err: error, pool_id: pool.pool_id }, "entitlement saved but not yet applied by allocation");
      throw new UnavailableError("the change is saved but the allocation service has not applied it yet; it will be applied automatically, or retry");
    }
  }

  return {
    async createAccount(req, ctx) {
      const name = requireText("name", req.name);
      const account = { account_id: newId("acc"), name, created_at: clock.now() };
      await db.transaction().execute(async (trx) => {
        await insertAccount(trx, account);
        await recordAudit(trx, { actor: actorOf(ctx), action: "account.created", accountId: account.account_id, subject: account.account_id, detail: { name }, occurredAt: account.created_at });
      });
      return { account: { accountId: account.account_id, name, createdAt: timestampFromDate(account.created_at) } };
    },

    async createLicenceType(req, ctx) {
      const licenceType = requireSlug("licence_type", req.licenceType);
      const description = requireText("description", req.description, { optional: true });
      const now = clock.now();
      await db.transaction().execute(async (trx) => {
        const inserted = await insertLicenceType(trx, { licence_type: licenceType, description, created_at: now });
        if (!inserted) throw new AlreadyExistsError(`licence type ${licenceType} already exists`);
        await recordAudit(trx, { actor: actorOf(ctx), action: "licence_type.created", accountId: null, subject: licenceType, detail: { description }, occurredAt: now });
      });
      return { licenceType: { licenceType, description } };
    },

    async listLicenceTypes() {
      const rows = await listLicenceTypes(db);
      return { licenceTypes: rows.map((row) => ({ licenceType: row.licence_type, description: row.description })) };
    },

    async putEncoderModel(req, ctx) {
      if (!req.model) throw new InvalidArgumentError("model", "is required");
      const model = requireSlug("model.model", req.model.model.toLowerCase());
      const licenceType = requireSlug("model.licence_type", req.model.licenceType);
      if (req.model.kind !== EncoderKind.HARDWARE && req.model.kind !== EncoderKind.CONTAINER) {
        throw new InvalidArgumentError("model.kind", "must be ENCODER_KIND_HARDWARE or ENCODER_KIND_CONTAINER");
      }
      const kind = req.model.kind === EncoderKind.HARDWARE ? "hardware" : "container";
      const minV9 = req.model.minV9Version || (kind === "hardware" ? "9.2" : "9.0");
      if (!VERSION_PATTERN.test(minV9) || !/^9(\.|$)/.test(minV9)) {
        throw new InvalidArgumentError("model.min_v9_version", "must be a 9.x version such as 9.2");
      }
      if (!(await findLicenceType(db, licenceType))) {
        throw new FailedPreconditionError(`unknown licence type: ${licenceType}; create it first`);
      }
      const row = { model, licence_type: licenceType, kind, min_v9_version: minV9, updated_at: clock.now(), synced: false } as const;
      await db.transaction().execute(async (trx) => {
        await upsertEncoderModel(trx, row);
        await recordAudit(trx, { actor: actorOf(ctx), action: "encoder_model.put", accountId: null, subject: model, detail: { licence_type: licenceType, kind, min_v9_version: minV9 }, occurredAt: row.updated_at });
      });
      try {
        await deps.sync.pushModel(row);
      } catch (error) {
        deps.logger.warn({ err: error, model }, "model saved but not yet applied by allocation");
        throw new UnavailableError("the model is saved but the allocation service has not applied it yet; it will be applied automatically, or retry");
      }
      return { model: toEncoderModelMessage(row) };
    },

    async listEncoderModels() {
      return { models: (await listEncoderModels(db)).map(toEncoderModelMessage) };
    },

    async createPool(req, ctx) {
      const accountId = requireId("account_id", req.accountId, "acc");
      const name = requireText("name", req.name);
      const expiresAt = requireTimestamp("expires_at", req.expiresAt);
      const totals = requireCounts("counts", req.counts);
      if (totals.size === 0) throw new InvalidArgumentError("counts", "needs at least one licence type");
      if (!(await findAccount(db, accountId))) throw new NotFoundError(`account ${accountId}`);
      await requireKnownTypes([...totals.keys()]);
      const now = clock.now();
      const pool: PoolRecord = {
        pool_id: newId("pool"),
        account_id: accountId,
        name,
        expires_at: expiresAt,
        version: 1,
        synced_version: 0,
        created_at: now,
        totals,
      };
      await db.transaction().execute(async (trx) => {
        const { totals: _totals, ...head } = pool;
        await insertPool(trx, head, totals);
        await recordAudit(trx, {
          actor: actorOf(ctx),
          action: "pool.created",
          accountId,
          subject: pool.pool_id,
          detail: { name, expires_at: expiresAt.toISOString(), counts: Object.fromEntries(totals) },
          occurredAt: now,
        });
      });
      // A new pool has no licences in use, so allocation learning of it a little later harms
      // nobody; answering `unavailable` here would invite a retry that makes a second pool.
      deps.outbox.kick();
      await deps.sync.pushPool(pool).catch((error: unknown) =>
        deps.logger.warn({ err: error, pool_id: pool.pool_id }, "pool created; allocation will receive it from the background sync"),
      );
      return { pool: toPoolMessage(pool) };
    },

    async getPool(req) {
      const poolId = requireId("pool_id", req.poolId, "pool");
      const pool = await findPool(db, poolId);
      if (!pool) throw new NotFoundError(`pool ${poolId}`);
      return { pool: toPoolMessage(pool) };
    },

    async listAccountPools(req) {
      const accountId = requireId("account_id", req.accountId, "acc");
      return { pools: (await listAccountPools(db, accountId)).map((pool) => toPoolMessage(pool)) };
    },

    async changeEntitlement(req, ctx) {
      const poolId = requireId("pool_id", req.poolId, "pool");
      const totals = requireCounts("counts", req.counts);
      const newExpiry = req.expiresAt ? requireTimestamp("expires_at", req.expiresAt) : undefined;
      if (totals.size === 0 && !newExpiry) throw new InvalidArgumentError("counts", "name a count or an expiry to change");
      await requireKnownTypes([...totals.keys()]);
      const now = clock.now();
      const changed = await db.transaction().execute(async (trx) => {
        const before = await findPool(trx, poolId, { forUpdate: true });
        if (!before) throw new NotFoundError(`pool ${poolId}`);
        const version = before.version + 1;
        const expiresAt = newExpiry ?? before.expires_at;
        await putTotals(trx, poolId, totals);
        await updatePoolHead(trx, poolId, { expires_at: expiresAt, version });
        const after: PoolRecord = { ...before, version, expires_at: expiresAt, totals: new Map([...before.totals, ...totals]) };
        const detail = {
          pool_id: poolId,
          version,
          counts_before: Object.fromEntries(before.totals),
          counts_after: Object.fromEntries(after.totals),
          expires_at_before: before.expires_at.toISOString(),
          expires_at_after: expiresAt.toISOString(),
        };
        await recordAudit(trx, { actor: actorOf(ctx), action: "entitlement.changed", accountId: before.account_id, subject: poolId, detail, occurredAt: now });
        await recordEvents(trx, [{ accountId: before.account_id, type: "entitlement.changed", data: detail, occurredAt: now }]);
        return after;
      });
      await propagate(changed);
      return { pool: toPoolMessage(changed) };
    },

    async listAudit(req) {
      const accountId = req.accountId ? requireId("account_id", req.accountId, "acc") : undefined;
      const limit = pageSize("limit", req.limit, 100, 1000);
      return { entries: await listAudit(db, { ...(accountId ? { accountId } : {}), limit }) };
    },
  };
}
