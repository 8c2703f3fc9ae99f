import type { SignedLease } from "@cls/proto";
import type { ServerCaller } from "@cls/auth";
import { InvalidArgumentError } from "@cls/errors";
import type { AllocationContext } from "./context.js";
import type { EncoderTable } from "./database.js";
import { findEncoder, upsertEncoder } from "./encoder.repository.js";
import { findEncoderModel } from "./entitlement.repository.js";
import { FirmwareRefusedError, UnknownModelError } from "./errors.js";
import { compareVersions, decideFirmware, formatVersion, parseVersion, type FirmwareDecision, type ModelRules, type Version } from "./firmware.js";
import { endAllocations, insertAllocationIfAbsent, listActiveForEncoders } from "./allocation.repository.js";
import { signLease } from "./leases.js";
import { requireActiveServer } from "./server.repository.js";
import type { Kysely } from "kysely";
import type { AllocationDatabase, EncoderModelCopyTable } from "./database.js";

/** The licence type recorded for perpetual legacy EdgeVis licences (v8 firmware). */
export const LEGACY_LICENCE_TYPE = "edgevis-legacy";

/** Camera id of the encoder-level legacy licence recorded at registration. */
export const ENCODER_LEVEL_CAMERA = "";

export function requireVersion(field: string, text: string): Version {
  const version = parseVersion(text);
  if (!version) throw new InvalidArgumentError(field, "must be a firmware version such as 9.2 or 9.2.1");
  return version;
}

export function modelRules(row: EncoderModelCopyTable): ModelRules {
  return { model: row.model, kind: row.kind, minV9Version: parseVersion(row.min_v9_version) ?? [9, 2, 0] };
}

export function higherVersion(a: Version, b: Version | undefined): Version {
  return b && compareVersions(b, a) > 0 ? b : a;
}

/** Applies SPEC L6 and L6a, throwing the refusal with its message. */
export function decideOrRefuse(rules: ModelRules, reported: Version, highestSeen: Version | undefined): Exclude<FirmwareDecision, { outcome: "refused" }> {
  const decision = decideFirmware(rules, reported, highestSeen);
  if (decision.outcome === "refused") throw new FirmwareRefusedError(decision.message);
  return decision;
}

export async function requireModel(db: Kysely<AllocationDatabase>, model: string): Promise<EncoderModelCopyTable> {
  const row = await findEncoderModel(db, model);
  if (!row) throw new UnknownModelError(model);
  return row;
}

/**
 * A new encoder instance on a server (SPEC L8.1): firmware rules, then the encoder is
 * recorded. A v8 encoder gets a perpetual legacy licence that consumes no pool capacity.
 */
export async function registerEncoder(
  ctx: AllocationContext,
  caller: ServerCaller,
  request: { encoderId: string; model: string; firmwareVersion: string },
): Promise<{ encoder: EncoderTable; legacyLease?: SignedLease }> {
  const { db, clock } = ctx;
  const reported = requireVersion("firmware_version", request.firmwareVersion);
  const server = await requireActiveServer(db, caller.serverId);
  const model = await requireModel(db, request.model);
  const existing = await findEncoder(db, server.server_id, request.encoderId);
  const highestSeen = existing ? parseVersion(existing.highest_version_seen) : undefined;
  const decision = decideOrRefuse(modelRules(model), reported, highestSeen);
  const now = clock.now();
  const encoder: EncoderTable = {
    server_id: server.server_id,
    encoder_id: request.encoderId,
    model: model.model,
    firmware_version: formatVersion(reported),
    highest_version_seen: formatVersion(higherVersion(reported, highestSeen)),
    licence_kind: decision.outcome,
    registered_at: existing?.registered_at ?? now,
    last_check_at: existing?.last_check_at ?? null,
  };

  const legacy = await db.transaction().execute(async (trx) => {
    await upsertEncoder(trx, encoder);
    if (decision.outcome === "pool") {
      // An upgrade from v8: the legacy licence ends; cameras now draw from the pool.
      const legacyRows = (await listActiveForEncoders(trx, server.server_id, [request.encoderId])).filter((row) => row.kind === "legacy");
      await endAllocations(trx, legacyRows.map((row) => row.allocation_id), "released", "firmware_upgraded", now);
      return undefined;
    }
    return (
      (await insertAllocationIfAbsent(trx, {
        account_id: server.account_id,
        pool_id: null,
        server_id: server.server_id,
        encoder_id: request.encoderId,
        camera_id: ENCODER_LEVEL_CAMERA,
        licence_type: LEGACY_LICENCE_TYPE,
        kind: "legacy",
        acquired_at: now,
        lease_expires_at: null,
      })) ?? (await listActiveForEncoders(trx, server.server_id, [request.encoderId])).find((row) => row.camera_id === ENCODER_LEVEL_CAMERA)
    );
  });
  if (!legacy) return { encoder };
  return { encoder, legacyLease: signLease(ctx.signer, legacy, legacy.lease_serial, { issuedAt: now }) };
}
