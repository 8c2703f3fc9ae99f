import { Code, ConnectError } from "@connectrpc/connect";
import type { ServerCaller } from "@cls/auth";
import { NotFoundError } from "@cls/errors";
import type { SignedLease } from "@cls/proto";
import type { AllocationContext } from "./context.js";
import { findActiveAllocation, insertAllocationIfAbsent, renewLeaseWithNextSerial, type AllocationRow } from "./allocation.repository.js";
import { PoolExhaustedError, PoolExpiredError, ServerRevokedError, ServerWithoutPoolError, UnknownModelError } from "./errors.js";
import { leaseTimes } from "./lease-times.js";
import { countLicences } from "./metrics.js";
import { signLease } from "./leases.js";
import { LEGACY_LICENCE_TYPE } from "./register-encoder.js";

/** Re-reads after a concurrent release or pool switch; more than this means something is churning. */
const MAX_ATTEMPTS = 3;

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
  request: { encoderId: string; cameraId: string; signal?: AbortSignal },
  attempt = 0,
): Promise<AcquiredLicence> {
  const { db, clock } = ctx;
  const known = await ctx.acquireContexts.load({ serverId: caller.serverId, encoderId: request.encoderId, cameraId: request.cameraId });
  if (!known.server) throw new ServerWithoutPoolError();
  if (known.server.state === "revoked") throw new ServerRevokedError();
  const server = { ...known.server, server_id: caller.serverId };
  if (!known.encoder) throw new NotFoundError(`encoder ${request.encoderId} is not registered with this server; register it first`);
  const encoder = { ...known.encoder, encoder_id: request.encoderId };
  const now = clock.now();

  if (encoder.licence_kind === "legacy") {
    const row = await db.transaction().execute(async (trx) => {
      const inserted = await insertAllocationIfAbsent(trx, {
        account_id: server.account_id,
        pool_id: null,
        server_id: server.server_id,
        encoder_id: encoder.encoder_id,
        camera_id: request.cameraId,
        licence_type: LEGACY_LICENCE_TYPE,
        kind: "legacy",
        acquired_at: now,
        lease_expires_at: null,
      });
      return inserted ?? (await findActiveAllocation(trx, server.server_id, encoder.encoder_id, request.cameraId))!;
    });
    return { allocation: row, lease: signLease(ctx.signer, row, row.lease_serial, { issuedAt: now }) };
  }

  if (!known.licenceType) throw new UnknownModelError(encoder.model);
  const model = { licence_type: known.licenceType };
  if (!known.poolExpiresAt) throw new PoolExhaustedError(server.pool_id, model.licence_type, 0, 0);
  const pool = { pool_id: server.pool_id, expires_at: known.poolExpiresAt };
  if (pool.expires_at <= now) throw new PoolExpiredError(pool.pool_id, pool.expires_at);
  const times = leaseTimes(now, pool.expires_at);

  if (known.existing) return (await renewOne(ctx, known.existing, pool.expires_at)) ?? retryAfterRelease(ctx, caller, request, attempt);

  const outcome = await ctx.allocator.grant({
    accountId: server.account_id,
    serverId: server.server_id,
    encoderId: encoder.encoder_id,
    cameraId: request.cameraId,
    poolId: pool.pool_id,
    licenceType: model.licence_type,
    now,
    leaseExpiresAt: times.expiresAt,
    ...(request.signal ? { signal: request.signal } : {}),
  });
  switch (outcome.kind) {
    case "granted":
      countLicences("granted", [outcome.allocation]);
      if (ctx.crashAfterCommit > 0 && Math.random() < ctx.crashAfterCommit) process.kill(process.pid, "SIGKILL");
      return { allocation: outcome.allocation, lease: signLease(ctx.signer, outcome.allocation, outcome.allocation.lease_serial, times) };
    case "existing":
      return (await renewOne(ctx, outcome.allocation, pool.expires_at)) ?? retryAfterRelease(ctx, caller, request, attempt);
    case "exhausted":
      countLicences("refused", [{ pool_id: pool.pool_id, licence_type: model.licence_type }]);
      ctx.outbox.kick();
      throw new PoolExhaustedError(pool.pool_id, model.licence_type, outcome.total, outcome.used);
    case "expired":
      throw new PoolExpiredError(pool.pool_id, outcome.expiresAt);
    case "revoked":
      throw new ServerRevokedError();
    case "abandoned":
      throw new ConnectError("the caller went away before a licence was taken; nothing was taken", Code.Canceled);
    case "pool_changed":
      if (attempt >= MAX_ATTEMPTS) throw new ConnectError("the server's pool kept changing while the camera was added; safe to retry", Code.Unavailable);
      return acquireLicence(ctx, caller, request, attempt + 1);
  }
}

/**
 * The camera's licence was released by another call between our read and our renewal: the
 * camera holds nothing now, so this add takes a licence afresh, as a first add would.
 */
function retryAfterRelease(
  ctx: AllocationContext,
  caller: ServerCaller,
  request: { encoderId: string; cameraId: string; signal?: AbortSignal },
  attempt: number,
): Promise<AcquiredLicence> {
  if (attempt >= MAX_ATTEMPTS) throw new ConnectError("the camera's licence kept changing while it was added; safe to retry", Code.Unavailable);
  return acquireLicence(ctx, caller, request, attempt + 1);
}

/** A repeat for a camera that already holds a licence: the same allocation, a fresh lease; undefined if it was released meanwhile. */
async function renewOne(ctx: AllocationContext, allocation: AllocationRow, poolExpiresAt: Date): Promise<AcquiredLicence | undefined> {
  const now = ctx.clock.now();
  const times = leaseTimes(now, poolExpiresAt);
  const serial = await renewLeaseWithNextSerial(ctx.db, allocation.allocation_id, times.expiresAt);
  if (serial === undefined) return undefined;
  const renewed = { ...allocation, lease_serial: serial, lease_expires_at: times.expiresAt };
  return { allocation: renewed, lease: signLease(ctx.signer, renewed, serial, times) };
}
