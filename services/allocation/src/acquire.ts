import type { ServerCaller } from "@cls/auth";
import { NotFoundError } from "@cls/errors";
import { recordEvents } from "@cls/outbox";
import type { SignedLease } from "@cls/proto";
import type { AllocationContext } from "./context.js";
import { findActiveAllocation, insertAllocationIfAbsent, nextLeaseSerials, renewLeases, type AllocationRow } from "./allocation.repository.js";
import { findEncoder } from "./encoder.repository.js";
import { findPoolCopy } from "./entitlement.repository.js";
import { PoolExhaustedError, PoolExpiredError, ServerRevokedError } from "./errors.js";
import { leaseTimes } from "./lease-times.js";
import { signLease } from "./leases.js";
import { LEGACY_LICENCE_TYPE, requireModel } from "./register-encoder.js";
import { requireActiveServer } from "./server.repository.js";
import { thresholdsCrossed } from "./usage-thresholds.js";

export interface AcquiredLicence {
  allocation: AllocationRow;
  lease: SignedLease;
}

/**
 * A camera added to a registered encoder (SPEC L7): one licence of the model's type from
 * the server's pool, as a signed lease. Adding the same camera again returns the same
 * allocation with a fresh lease; it never takes a second licence.
 */
export async function acquireLicence(
  ctx: AllocationContext,
  caller: ServerCaller,
  request: { encoderId: string; cameraId: string },
  attempt = 0,
): Promise<AcquiredLicence> {
  const { db, clock } = ctx;
  const server = await requireActiveServer(db, caller.serverId);
  const encoder = await findEncoder(db, server.server_id, request.encoderId);
  if (!encoder) throw new NotFoundError(`encoder ${request.encoderId} is not registered with this server; register it first`);
  const now = clock.now();

  if (encoder.licence_kind === "legacy") {
    const row = await db.transaction().execute(async (trx) => {
      const [serial] = await nextLeaseSerials(trx, 1);
      const inserted = await insertAllocationIfAbsent(trx, {
        account_id: server.account_id,
        pool_id: null,
        server_id: server.server_id,
        encoder_id: encoder.encoder_id,
        camera_id: request.cameraId,
        licence_type: LEGACY_LICENCE_TYPE,
        kind: "legacy",
        acquired_at: now,
        lease_serial: serial!,
        lease_expires_at: null,
      });
      return inserted ?? (await findActiveAllocation(trx, server.server_id, encoder.encoder_id, request.cameraId))!;
    });
    return { allocation: row, lease: signLease(ctx.signer, row, row.lease_serial, { issuedAt: now }) };
  }

  const model = await requireModel(db, encoder.model);
  const pool = await findPoolCopy(db, server.pool_id);
  if (!pool) throw new PoolExhaustedError(server.pool_id, model.licence_type, 0, 0);
  if (pool.expires_at <= now) throw new PoolExpiredError(pool.pool_id, pool.expires_at);
  const times = leaseTimes(now, pool.expires_at);

  const existing = await findActiveAllocation(db, server.server_id, encoder.encoder_id, request.cameraId);
  if (existing) return renewOne(ctx, existing, pool.expires_at);

  try {
    const grant = await ctx.allocator.take(
      pool.pool_id,
      model.licence_type,
      now,
      async (trx) => {
        // Holds the server's binding steady until commit: a pool switch or a revocation that
        // started first is waited for and then seen, so this grant cannot land in a pool the
        // server has just left, or for a server that has just been revoked.
        const binding = await trx.selectFrom("servers").select(["pool_id", "state"]).where("server_id", "=", server.server_id).forShare().executeTakeFirst();
        if (binding?.state !== "active") throw new ServerRevokedError();
        if (binding.pool_id !== pool.pool_id) throw new PoolChangedError();
        const [serial] = await nextLeaseSerials(trx, 1);
        const inserted = await insertAllocationIfAbsent(trx, {
          account_id: server.account_id,
          pool_id: pool.pool_id,
          server_id: server.server_id,
          encoder_id: encoder.encoder_id,
          camera_id: request.cameraId,
          licence_type: model.licence_type,
          kind: "pool",
          acquired_at: now,
          lease_serial: serial!,
          lease_expires_at: times.expiresAt,
        });
        if (inserted) return { count: 1, result: inserted };
        // A concurrent request for the same camera won: this one takes nothing.
        return { count: 0, result: (await findActiveAllocation(trx, server.server_id, encoder.encoder_id, request.cameraId))! };
      },
      async (trx, usage) => {
        const crossed = thresholdsCrossed(usage);
        await recordEvents(
          trx,
          crossed.map((percent) => ({
            accountId: server.account_id,
            type: "pool.usage_crossed",
            data: { pool_id: pool.pool_id, licence_type: model.licence_type, threshold_percent: percent, total: usage.capacity, used: usage.usedAfter },
            occurredAt: now,
          })),
        );
      },
    );
    if (!grant.granted) return renewOne(ctx, grant.result, pool.expires_at);
    if (thresholdsCrossed(grant.usage).length > 0) ctx.outbox.kick();
    return { allocation: grant.result, lease: signLease(ctx.signer, grant.result, grant.result.lease_serial, times) };
  } catch (error) {
    if (error instanceof PoolChangedError && attempt === 0) return acquireLicence(ctx, caller, request, 1);
    if (error instanceof PoolExhaustedError) await recordRefusal(ctx, server.account_id, server.server_id, encoder.encoder_id, request.cameraId, error);
    throw error;
  }
}

/** A repeat for a camera that already holds a licence: the same allocation, a fresh lease. */
async function renewOne(ctx: AllocationContext, allocation: AllocationRow, poolExpiresAt: Date): Promise<AcquiredLicence> {
  const now = ctx.clock.now();
  const times = leaseTimes(now, poolExpiresAt);
  const [serial] = await nextLeaseSerials(ctx.db, 1);
  await renewLeases(ctx.db, [{ allocationId: allocation.allocation_id, serial: serial!, expiresAt: times.expiresAt }]);
  const renewed = { ...allocation, lease_serial: serial!, lease_expires_at: times.expiresAt };
  return { allocation: renewed, lease: signLease(ctx.signer, renewed, serial!, times) };
}

/** A refusal for lack of licences is itself an event the customer is told about (SPEC L15). */
async function recordRefusal(
  ctx: AllocationContext,
  accountId: string,
  serverId: string,
  encoderId: string,
  cameraId: string,
  error: PoolExhaustedError,
): Promise<void> {
  try {
    await recordEvents(ctx.db, [
      {
        accountId,
        type: "acquisition.refused",
        data: { pool_id: error.poolId, licence_type: error.licenceType, total: error.total, used: error.used, server_id: serverId, encoder_id: encoderId, camera_id: cameraId },
        occurredAt: ctx.clock.now(),
      },
    ]);
    ctx.outbox.kick();
  } catch (recordError) {
    ctx.logger.warn({ err: recordError }, "could not record the refusal event");
  }
}

/** The server moved to another pool while this grant was being made: retry against the new one. */
class PoolChangedError extends Error {}
