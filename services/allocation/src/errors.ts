import { create } from "@bufbuild/protobuf";
import { FailedPreconditionError, PermissionDeniedError, ResourceExhaustedError } from "@cls/errors";
import { PoolExhaustedDetailSchema, PoolShortfallDetailSchema } from "@cls/proto";

/** No free licence of the type in the pool (SPEC L7); details carry total and used. */
export class PoolExhaustedError extends ResourceExhaustedError {
  constructor(readonly poolId: string, readonly licenceType: string, readonly total: number, readonly used: number) {
    super(`no free ${licenceType} licence in pool ${poolId}: ${used} of ${total} in use; try again later or raise the count`, [
      { desc: PoolExhaustedDetailSchema, value: create(PoolExhaustedDetailSchema, { poolId, licenceType, total, used }) },
    ]);
  }
}

/** The pool has reached its expiry instant (SPEC L5). */
export class PoolExpiredError extends FailedPreconditionError {
  constructor(poolId: string, expiredAt: Date) {
    super(`pool ${poolId} expired at ${expiredAt.toISOString()}: it grants and renews no licences`);
  }
}

/** A pool switch that does not fit (SPEC L3); details carry the shortfall per type. */
export class PoolShortfallError extends FailedPreconditionError {
  constructor(poolId: string, shortfalls: { licenceType: string; needed: number; free: number }[]) {
    const summary = shortfalls.map((s) => `${s.licenceType}: needs ${s.needed}, ${s.free} free`).join("; ");
    super(`pool ${poolId} has no room for this server's licences (${summary}); nothing was changed`, [
      { desc: PoolShortfallDetailSchema, value: create(PoolShortfallDetailSchema, { poolId, shortfalls }) },
    ]);
  }
}

/** A firmware rule refused the encoder (SPEC L6, L6a). */
export class FirmwareRefusedError extends FailedPreconditionError {}

export class UnknownModelError extends FailedPreconditionError {
  constructor(model: string) {
    super(`unknown encoder model ${JSON.stringify(model)}: it is not in the licensing catalogue`);
  }
}

export class ServerRevokedError extends PermissionDeniedError {
  constructor() {
    super("this server has been revoked");
  }
}

export class ServerWithoutPoolError extends FailedPreconditionError {
  constructor() {
    super("this server is not bound to a pool; enroll it with an enrollment code for a pool");
  }
}
