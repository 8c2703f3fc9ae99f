import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { ServiceImpl } from "@connectrpc/connect";
import { ClsError, InvalidArgumentError, NotFoundError } from "@cls/errors";
import type { AllocationService } from "@cls/proto";
import { callerActor, requireCaller, requireServerCaller } from "@cls/server";
import type { Caller } from "@cls/auth";
import { pageSize, requireExternalId, requireId, requireListSize, requireSlug } from "@cls/validation";
import { acquireLicence } from "./acquire.js";
import { listAllocations } from "./allocation.repository.js";
import { toAllocationMessage, toEncoderMessage } from "./allocation.mapping.js";
import type { AllocationContext } from "./context.js";
import { checkEncoders, type EncoderCheckOutcome } from "./daily-check.js";
import { registerEncoder } from "./register-encoder.js";
import { releaseLicence } from "./release.js";
import { switchPool } from "./switch-pool.js";

/** Most encoders one batched daily check may name. */
export const MAX_CHECK_BATCH = 5_000;
const MAX_VERSION_LENGTH = 32;

function requireFirmwareText(field: string, value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError(field, "is required");
  if (value.length > MAX_VERSION_LENGTH) throw new InvalidArgumentError(field, `must be at most ${MAX_VERSION_LENGTH} characters`);
  return value;
}

function toCheckResponse(outcome: Extract<EncoderCheckOutcome, { ok: true }>) {
  return {
    encoderId: outcome.encoderId,
    leases: outcome.leases,
    revocations: outcome.revocations.map((r) => ({ encoderId: r.encoderId, cameraId: r.cameraId, reason: r.reason })),
  };
}

/**
 * The server a management call acts on: a server acts on itself; a customer names one of
 * their account's servers (checked against the account where it is used).
 */
function targetServer(caller: Caller, requested: string): string {
  if (caller.kind === "customer") {
    if (!requested) throw new InvalidArgumentError("server_id", "is required when calling with an API key");
    return requireId("server_id", requested, "srv");
  }
  if (requested && requireId("server_id", requested, "srv") !== caller.serverId) throw new NotFoundError(`server ${requested}`);
  return caller.serverId;
}

/** Public: what an EdgeVis Server calls (SPEC L8) and what it may list and manage (L14). */
export function createAllocationService(ctx: AllocationContext): ServiceImpl<typeof AllocationService> {
  return {
    async registerEncoder(req, handler) {
      const caller = requireServerCaller(handler);
      const { encoder, legacyLease } = await registerEncoder(ctx, caller, {
        encoderId: requireExternalId("encoder_id", req.encoderId),
        model: requireSlug("model", req.model.toLowerCase()),
        firmwareVersion: requireFirmwareText("firmware_version", req.firmwareVersion),
      });
      return { encoder: toEncoderMessage(encoder), ...(legacyLease ? { legacyLease } : {}) };
    },

    async acquireLicence(req, handler) {
      const caller = requireServerCaller(handler);
      const { allocation, lease } = await acquireLicence(ctx, caller, {
        encoderId: requireExternalId("encoder_id", req.encoderId),
        cameraId: requireExternalId("camera_id", req.cameraId),
        signal: handler.signal,
      });
      return { allocation: toAllocationMessage(allocation), lease };
    },

    async releaseLicence(req, handler) {
      const caller = requireCaller(handler);
      const encoderId = requireExternalId("encoder_id", req.encoderId);
      const cameraId = requireExternalId("camera_id", req.cameraId);
      const serverId = targetServer(caller, req.serverId);
      const released = await releaseLicence(ctx, { accountId: caller.accountId, serverId, encoderId, cameraId, actor: callerActor(caller) });
      return { released };
    },

    async checkEncoder(req, handler) {
      const caller = requireServerCaller(handler);
      const [outcome] = await checkEncoders(ctx, caller, [
        { encoderId: requireExternalId("encoder_id", req.encoderId), firmwareVersion: requireFirmwareText("firmware_version", req.firmwareVersion) },
      ]);
      if (!outcome) throw new Error("daily check returned no outcome");
      if (!outcome.ok) throw new ClsError(outcome.code, outcome.message);
      return toCheckResponse(outcome);
    },

    async checkEncoders(req, handler) {
      const caller = requireServerCaller(handler);
      requireListSize("encoders", req.encoders, MAX_CHECK_BATCH, 1);
      const seen = new Set<string>();
      const requests = req.encoders.map((entry, i) => {
        const encoderId = requireExternalId(`encoders[${i}].encoder_id`, entry.encoderId);
        if (seen.has(encoderId)) throw new InvalidArgumentError(`encoders[${i}].encoder_id`, "names an encoder already in this batch");
        seen.add(encoderId);
        return { encoderId, firmwareVersion: requireFirmwareText(`encoders[${i}].firmware_version`, entry.firmwareVersion) };
      });
      const outcomes = await checkEncoders(ctx, caller, requests);
      return {
        outcomes: outcomes.map((outcome) =>
          outcome.ok
            ? { encoderId: outcome.encoderId, result: toCheckResponse(outcome) }
            : { encoderId: outcome.encoderId, errorCode: codeToString(outcome.code), errorMessage: outcome.message },
        ),
      };
    },

    async listAllocations(req, handler) {
      const caller = requireCaller(handler);
      const rows = await listAllocations(ctx.db, {
        accountId: caller.accountId,
        ...(req.serverId ? { serverId: requireId("server_id", req.serverId, "srv") } : {}),
        ...(req.encoderId ? { encoderId: requireExternalId("encoder_id", req.encoderId) } : {}),
        ...(req.cameraId ? { cameraId: requireExternalId("camera_id", req.cameraId) } : {}),
        includeEnded: req.includeEnded,
        limit: pageSize("limit", 0, 1_000, 1_000),
      });
      return { allocations: rows.map(toAllocationMessage) };
    },

    async switchPool(req, handler) {
      const caller = requireCaller(handler);
      return switchPool(ctx, {
        accountId: caller.accountId,
        serverId: targetServer(caller, req.serverId),
        poolId: requireId("pool_id", req.poolId, "pool"),
        actor: callerActor(caller),
      });
    },

    async getLeaseKey() {
      return { keyId: ctx.signer.keyId, publicKey: ctx.signer.publicKey };
    },
  };
}
