import { Code } from "@connectrpc/connect";
import type { ServerCaller } from "@cls/auth";
import { ClsError } from "@cls/errors";
import { recordEvents, type OutboxEvent } from "@cls/outbox";
import type { SignedLease } from "@cls/proto";
import type { AllocationContext } from "./context.js";
import type { EncoderTable } from "./database.js";
import { endAllocations, listAboveCapacity, listActiveForEncoders, nextLeaseSerials, renewLeases, type AllocationRow } from "./allocation.repository.js";
import { listEncoders, recordChecks } from "./encoder.repository.js";
import { listEncoderModels, listUsage, releaseEndedAllocations, type PoolUsageRow } from "./entitlement.repository.js";
import { formatVersion, parseVersion } from "./firmware.js";
import { leaseTimes } from "./lease-times.js";
import { countLicences } from "./metrics.js";
import { signLease } from "./leases.js";
import { decideOrRefuse, higherVersion, modelRules, requireVersion } from "./register-encoder.js";
import { requireActiveServer, touchServerCheck } from "./server.repository.js";
import type { Kysely } from "kysely";
import type { AllocationDatabase } from "./database.js";

export type RevocationReason = "entitlement_lowered" | "pool_expired" | "firmware_upgraded" | "firmware_legacy";

export interface Revocation {
  encoderId: string;
  cameraId: string;
  reason: RevocationReason;
}

export type EncoderCheckOutcome =
  | { encoderId: string; ok: true; leases: SignedLease[]; revocations: Revocation[] }
  | { encoderId: string; ok: false; code: Code; message: string };

interface Planned {
  encoderId: string;
  renew: AllocationRow[];
  revoke: { allocation: AllocationRow; reason: RevocationReason }[];
}

/**
 * The daily check of a server's encoders (SPEC L8.3, L9): firmware rules, then fresh leases
 * for every licence still held, and revocations where a lowered count (L4), an expired
 * pool (L5) or a firmware change applies. One encoder's refusal does not fail the others.
 */
export async function checkEncoders(
  ctx: AllocationContext,
  caller: ServerCaller,
  requests: readonly { encoderId: string; firmwareVersion: string }[],
): Promise<EncoderCheckOutcome[]> {
  const { db, clock } = ctx;
  const now = clock.now();
  const server = await requireActiveServer(db, caller.serverId);
  const ids = [...new Set(requests.map((r) => r.encoderId))];
  const encoders = new Map((await listEncoders(db, server.server_id, ids)).map((e) => [e.encoder_id, e]));
  const models = new Map((await listEncoderModels(db, [...new Set([...encoders.values()].map((e) => e.model))])).map((m) => [m.model, m]));
  const activeByEncoder = groupBy(await listActiveForEncoders(db, server.server_id, ids), (a) => a.encoder_id);
  const poolIds = [...new Set([...activeByEncoder.values()].flat().flatMap((a) => (a.pool_id ? [a.pool_id] : [])))];
  const usage = new Map((await listUsage(db, poolIds)).map((u) => [`${u.pool_id}/${u.licence_type}`, u]));
  const aboveCapacity = new AboveCapacity(db);

  const outcomes: EncoderCheckOutcome[] = [];
  const plans: Planned[] = [];
  const encoderUpdates: Pick<EncoderTable, "encoder_id" | "firmware_version" | "highest_version_seen" | "licence_kind">[] = [];
  for (const request of requests) {
    try {
      const encoder = encoders.get(request.encoderId);
      if (!encoder) throw new ClsError(Code.NotFound, `encoder ${request.encoderId} is not registered with this server`);
      const model = models.get(encoder.model);
      if (!model) throw new ClsError(Code.FailedPrecondition, `unknown encoder model ${JSON.stringify(encoder.model)}`);
      const reported = requireVersion("firmware_version", request.firmwareVersion);
      const highestSeen = parseVersion(encoder.highest_version_seen);
      const decision = decideOrRefuse(modelRules(model), reported, highestSeen);
      encoderUpdates.push({
        encoder_id: encoder.encoder_id,
        firmware_version: formatVersion(reported),
        highest_version_seen: formatVersion(higherVersion(reported, highestSeen)),
        licence_kind: decision.outcome,
      });
      const plan: Planned = { encoderId: encoder.encoder_id, renew: [], revoke: [] };
      for (const allocation of activeByEncoder.get(encoder.encoder_id) ?? []) {
        if (decision.outcome === "pool" && allocation.kind === "legacy") {
          plan.revoke.push({ allocation, reason: "firmware_upgraded" });
        } else if (decision.outcome === "legacy" && allocation.kind === "pool") {
          plan.revoke.push({ allocation, reason: "firmware_legacy" });
        } else if (allocation.kind === "legacy") {
          plan.renew.push(allocation);
        } else {
          const row = usage.get(`${allocation.pool_id}/${allocation.licence_type}`);
          if (!row || row.expires_at <= now) plan.revoke.push({ allocation, reason: "pool_expired" });
          else if (await aboveCapacity.has(row, allocation)) plan.revoke.push({ allocation, reason: "entitlement_lowered" });
          else plan.renew.push(allocation);
        }
      }
      plans.push(plan);
    } catch (error) {
      if (!(error instanceof ClsError)) throw error;
      outcomes.push({ encoderId: request.encoderId, ok: false, code: error.code, message: error.message });
    }
  }

  const toRenew = plans.flatMap((p) => p.renew);
  const serials = await nextLeaseSerials(db, toRenew.length);
  const renewals = toRenew.map((allocation, i) => {
    const pool = allocation.pool_id ? usage.get(`${allocation.pool_id}/${allocation.licence_type}`) : undefined;
    const times = pool ? leaseTimes(now, pool.expires_at) : { issuedAt: now };
    return { allocation, serial: serials[i]!, times };
  });

  await db.transaction().execute(async (trx) => {
    await touchServerCheck(trx, server.server_id, now);
    await recordChecks(trx, server.server_id, encoderUpdates, now);
    await renewLeases(
      trx,
      renewals.map((r) => ({ allocationId: r.allocation.allocation_id, serial: r.serial, expiresAt: "expiresAt" in r.times ? r.times.expiresAt : null })),
    );
    const reasons = new Map(plans.flatMap((p) => p.revoke.map((r) => [r.allocation.allocation_id, r.reason] as const)));
    const revoked: AllocationRow[] = [];
    for (const [reason, ids] of groupBy([...reasons.keys()], (id) => reasons.get(id)!)) {
      revoked.push(...(await endAllocations(trx, ids, "revoked", reason, now)));
    }
    await releaseEndedAllocations(trx, revoked);
    countLicences("revoked", revoked);
    const events: OutboxEvent[] = revoked.map((row) => ({
      accountId: server.account_id,
      type: "licence.revoked",
      data: { allocation_id: row.allocation_id, server_id: row.server_id, encoder_id: row.encoder_id, camera_id: row.camera_id, pool_id: row.pool_id, licence_type: row.licence_type, reason: reasons.get(row.allocation_id) },
      occurredAt: now,
    }));
    await recordEvents(trx, events);
  });
  if (plans.some((p) => p.revoke.length > 0)) ctx.outbox.kick();

  const leasesByEncoder = groupBy(
    renewals.map((r) => ({ encoderId: r.allocation.encoder_id, lease: signLease(ctx.signer, r.allocation, r.serial, r.times) })),
    (x) => x.encoderId,
  );
  for (const plan of plans) {
    outcomes.push({
      encoderId: plan.encoderId,
      ok: true,
      leases: (leasesByEncoder.get(plan.encoderId) ?? []).map((x) => x.lease),
      revocations: plan.revoke.map((r) => ({ encoderId: plan.encoderId, cameraId: r.allocation.camera_id, reason: r.reason })),
    });
  }
  const order = new Map(requests.map((r, i) => [r.encoderId, i]));
  return outcomes.sort((a, b) => (order.get(a.encoderId) ?? 0) - (order.get(b.encoderId) ?? 0));
}

/** Which allocations rank above a lowered count, computed once per pool and type. */
class AboveCapacity {
  readonly #cache = new Map<string, Promise<Set<string>>>();
  constructor(private readonly db: Kysely<AllocationDatabase>) {}

  async has(usage: PoolUsageRow, allocation: AllocationRow): Promise<boolean> {
    if (usage.used <= usage.capacity) return false;
    const key = `${usage.pool_id}/${usage.licence_type}`;
    let ids = this.#cache.get(key);
    if (!ids) {
      ids = listAboveCapacity(this.db, usage.pool_id, usage.licence_type, usage.capacity).then((rows) => new Set(rows.map((r) => r.allocation_id)));
      this.#cache.set(key, ids);
    }
    return (await ids).has(allocation.allocation_id);
  }
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
