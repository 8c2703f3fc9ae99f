import { Code } from "@connectrpc/connect";
import type { Kysely, Transaction } from "kysely";
import type { ServerCaller } from "@cls/auth";
import { ClsError } from "@cls/errors";
import { recordEvents } from "@cls/outbox";
import type { SignedLease } from "@cls/proto";
import type { AllocationContext } from "./context.js";
import type { AllocationDatabase, EncoderTable } from "./database.js";
import { endAllocations, listAboveCapacity, listActiveForEncoders, nextLeaseSerials, renewLeases, type AllocationRow } from "./allocation.repository.js";
import { listEncoders, recordChecks } from "./encoder.repository.js";
import { listEncoderModels, listUsage, releaseEndedAllocations, type PoolUsageRow } from "./entitlement.repository.js";
import { formatVersion, parseVersion } from "./firmware.js";
import { leaseTimes } from "./lease-times.js";
import { signLeaseAsync, type LeaseTimesOrPerpetual } from "./leases.js";
import { countLicences } from "./metrics.js";
import { decideOrRefuse, higherVersion, modelRules, requireVersion } from "./register-encoder.js";
import { requireActiveServer, touchServerCheck, type ServerRow } from "./server.repository.js";

export type RevocationReason = "entitlement_lowered" | "pool_expired" | "firmware_upgraded" | "firmware_legacy";

export interface Revocation {
  encoderId: string;
  cameraId: string;
  reason: RevocationReason;
}

export type EncoderCheckOutcome =
  | { encoderId: string; ok: true; leases: SignedLease[]; revocations: Revocation[] }
  | { encoderId: string; ok: false; code: Code; message: string };

interface EncoderPlan {
  encoderId: string;
  renew: AllocationRow[];
  revoke: { allocation: AllocationRow; reason: RevocationReason }[];
}

type EncoderUpdate = Pick<EncoderTable, "encoder_id" | "firmware_version" | "highest_version_seen" | "licence_kind">;

interface Renewal {
  allocation: AllocationRow;
  serial: number;
  times: LeaseTimesOrPerpetual;
}

/**
 * The daily check of a server's encoders (SPEC L8.3, L9): firmware rules, then fresh leases
 * for every licence still held, and revocations where a lowered count (L4), an expired
 * pool (L5) or a firmware change applies. One encoder's refusal does not fail the others.
 *
 * It runs in one transaction that first takes the server's row: a pool switch or a
 * revocation already under way finishes before the check reads anything, so no lease it
 * returns names a pool the server has left.
 */
export async function checkEncoders(
  ctx: AllocationContext,
  caller: ServerCaller,
  requests: readonly { encoderId: string; firmwareVersion: string }[],
): Promise<EncoderCheckOutcome[]> {
  const now = ctx.clock.now();
  await requireActiveServer(ctx.db, caller.serverId);
  const checked = await ctx.db.transaction().execute(async (trx) => {
    await touchServerCheck(trx, caller.serverId, now);
    const server = await requireActiveServer(trx, caller.serverId);
    const planned = await planChecks(trx, server, requests, now);
    const renewals = await applyPlans(trx, server, planned, now);
    return { ...planned, renewals };
  });
  if (checked.plans.some((p) => p.revoke.length > 0)) ctx.outbox.kick();

  // Signed together on the thread pool: Ed25519 signing would otherwise dominate the main thread.
  const signed = await Promise.all(
    checked.renewals.map(async (r) => ({ encoderId: r.allocation.encoder_id, lease: await signLeaseAsync(ctx.signer, r.allocation, r.serial, r.times) })),
  );
  const leasesByEncoder = groupBy(signed, (x) => x.encoderId);
  const outcomes: EncoderCheckOutcome[] = [
    ...checked.refusals,
    ...checked.plans.map((plan) => ({
      encoderId: plan.encoderId,
      ok: true as const,
      leases: (leasesByEncoder.get(plan.encoderId) ?? []).map((x) => x.lease),
      revocations: plan.revoke.map((r) => ({ encoderId: plan.encoderId, cameraId: r.allocation.camera_id, reason: r.reason })),
    })),
  ];
  const order = new Map(requests.map((r, i) => [r.encoderId, i]));
  return outcomes.sort((a, b) => (order.get(a.encoderId) ?? 0) - (order.get(b.encoderId) ?? 0));
}

/** Decides, per encoder, which licences to renew and which to revoke, with a fixed number of queries. */
async function planChecks(trx: Transaction<AllocationDatabase>, server: ServerRow, requests: readonly { encoderId: string; firmwareVersion: string }[], now: Date) {
  const ids = [...new Set(requests.map((r) => r.encoderId))];
  const encoders = new Map((await listEncoders(trx, server.server_id, ids)).map((e) => [e.encoder_id, e]));
  const models = new Map((await listEncoderModels(trx, [...new Set([...encoders.values()].map((e) => e.model))])).map((m) => [m.model, m]));
  const activeByEncoder = groupBy(await listActiveForEncoders(trx, server.server_id, ids), (a) => a.encoder_id);
  const poolIds = [...new Set([...activeByEncoder.values()].flat().flatMap((a) => (a.pool_id ? [a.pool_id] : [])))];
  const usage = new Map((await listUsage(trx, poolIds)).map((u) => [usageKey(u.pool_id, u.licence_type), u]));
  const aboveCapacity = new AboveCapacity(trx);

  const refusals: EncoderCheckOutcome[] = [];
  const plans: EncoderPlan[] = [];
  const encoderUpdates: EncoderUpdate[] = [];
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
      const plan: EncoderPlan = { encoderId: encoder.encoder_id, renew: [], revoke: [] };
      for (const allocation of activeByEncoder.get(encoder.encoder_id) ?? []) {
        const reason = await revocationReason(allocation, decision.outcome, usage, aboveCapacity, now);
        if (reason) plan.revoke.push({ allocation, reason });
        else plan.renew.push(allocation);
      }
      plans.push(plan);
    } catch (error) {
      if (!(error instanceof ClsError)) throw error;
      refusals.push({ encoderId: request.encoderId, ok: false, code: error.code, message: error.message });
    }
  }
  return { refusals, plans, encoderUpdates, usage };
}

/** Why a held licence ends at this check, if it does. */
async function revocationReason(
  allocation: AllocationRow,
  licensing: "pool" | "legacy",
  usage: Map<string, PoolUsageRow>,
  aboveCapacity: AboveCapacity,
  now: Date,
): Promise<RevocationReason | undefined> {
  if (licensing === "pool" && allocation.kind === "legacy") return "firmware_upgraded";
  if (licensing === "legacy" && allocation.kind === "pool") return "firmware_legacy";
  if (allocation.kind === "legacy") return undefined;
  const row = usage.get(usageKey(allocation.pool_id!, allocation.licence_type));
  if (!row || row.expires_at <= now) return "pool_expired";
  if (await aboveCapacity.has(row, allocation)) return "entitlement_lowered";
  return undefined;
}

/** Writes the check: encoders' firmware, renewed leases, revocations with their events. */
async function applyPlans(
  trx: Transaction<AllocationDatabase>,
  server: ServerRow,
  planned: { plans: EncoderPlan[]; encoderUpdates: EncoderUpdate[]; usage: Map<string, PoolUsageRow> },
  now: Date,
): Promise<Renewal[]> {
  const toRenew = planned.plans.flatMap((p) => p.renew);
  const serials = await nextLeaseSerials(trx, toRenew.length);
  const renewals = toRenew.map((allocation, i): Renewal => {
    const pool = allocation.pool_id ? planned.usage.get(usageKey(allocation.pool_id, allocation.licence_type)) : undefined;
    return { allocation, serial: serials[i]!, times: pool ? leaseTimes(now, pool.expires_at) : { issuedAt: now } };
  });
  await recordChecks(trx, server.server_id, planned.encoderUpdates, now);
  await renewLeases(
    trx,
    renewals.map((r) => ({ allocationId: r.allocation.allocation_id, serial: r.serial, expiresAt: "expiresAt" in r.times ? r.times.expiresAt : null })),
  );

  const reasons = new Map(planned.plans.flatMap((p) => p.revoke.map((r) => [r.allocation.allocation_id, r.reason] as const)));
  const revoked: AllocationRow[] = [];
  for (const [reason, ids] of groupBy([...reasons.keys()], (id) => reasons.get(id)!)) {
    revoked.push(...(await endAllocations(trx, ids, "revoked", reason, now)));
  }
  await releaseEndedAllocations(trx, revoked);
  countLicences("revoked", revoked);
  await recordEvents(
    trx,
    revoked.map((row) => ({
      accountId: server.account_id,
      type: "licence.revoked",
      data: { allocation_id: row.allocation_id, server_id: row.server_id, encoder_id: row.encoder_id, camera_id: row.camera_id, pool_id: row.pool_id, licence_type: row.licence_type, reason: reasons.get(row.allocation_id) },
      occurredAt: now,
    })),
  );
  return renewals;
}

const usageKey = (poolId: string, licenceType: string) => `${poolId}\u0000${licenceType}`;

/** Which allocations rank above a lowered count, computed once per pool and type. */
class AboveCapacity {
  readonly #cache = new Map<string, Promise<Set<string>>>();
  constructor(private readonly db: Kysely<AllocationDatabase>) {}

  async has(usage: PoolUsageRow, allocation: AllocationRow): Promise<boolean> {
    if (usage.used <= usage.capacity) return false;
    const key = usageKey(usage.pool_id, usage.licence_type);
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
