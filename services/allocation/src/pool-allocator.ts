import type { Kysely, Transaction } from "kysely";
import type { Logger } from "pino";
import type { HeldLock, LockService } from "@cls/lock";
import { recordEvents, type OutboxEvent } from "@cls/outbox";
import { clsMetrics, inSpan } from "@cls/telemetry";
import type { AllocationDatabase } from "./database.js";
import { cameraKey, findActiveForCameras, type AllocationRow } from "./allocation.repository.js";
import { insertAndCountAllocations, lockServersThenUsage } from "./grant.repository.js";
import { thresholdsCrossed } from "./usage-thresholds.js";

const LOCK_TTL_MS = 2_000;
const LOCK_WAIT_MS = 1_000;
const MAX_FENCE_RETRIES = 3;
/** Most acquires one transaction takes on; more wait for the next batch. */
const MAX_BATCH = 256;

/** One camera asking for a licence of a pool. */
export interface GrantRequest {
  accountId: string;
  serverId: string;
  encoderId: string;
  cameraId: string;
  poolId: string;
  licenceType: string;
  now: Date;
  leaseExpiresAt: Date;
  /** Aborted when the caller has gone (timed out, disconnected): then nothing is taken for it. */
  signal?: AbortSignal;
}

export type GrantOutcome =
  | { kind: "granted"; allocation: AllocationRow }
  /** The camera already held a licence (a retry, or the same camera twice): nothing taken. */
  | { kind: "existing"; allocation: AllocationRow }
  | { kind: "exhausted"; total: number; used: number }
  | { kind: "expired"; expiresAt: Date }
  /** The server moved to another pool meanwhile: ask again against its new pool. */
  | { kind: "pool_changed" }
  | { kind: "revoked" }
  /** The caller had gone by the time the pool was locked: nothing was taken. */
  | { kind: "abandoned" };

interface Pending {
  request: GrantRequest;
  resolve(outcome: GrantOutcome): void;
  reject(error: unknown): void;
}

/**
 * Takes licences from pools without ever exceeding a count (SPEC L7a), coalescing the
 * acquires for one pool and type that arrive together into one lock and one transaction.
 *
 * The per-pool Redis lock serialises work across replicas and hands out a fencing token.
 * The guarantee is Postgres's: the usage row is locked, the grant is sized to the room left,
 * and the closing UPDATE only adds when `used + n <= capacity`. A lying lock, a lost fence
 * counter or no Redis at all can slow grants down but never over-grant.
 */
export function createPoolAllocator(deps: { db: Kysely<AllocationDatabase>; locks: LockService; logger: Logger }) {
  const { db, locks, logger } = deps;
  const queues = new Map<string, { pending: Pending[]; running: boolean }>();

  function grant(request: GrantRequest): Promise<GrantOutcome> {
    const key = `pool:${request.poolId}:${request.licenceType}`;
    let queue = queues.get(key);
    if (!queue) {
      queue = { pending: [], running: false };
      queues.set(key, queue);
    }
    const promise = new Promise<GrantOutcome>((resolve, reject) => queue.pending.push({ request, resolve, reject }));
    if (!queue.running) void drain(key, queue);
    return promise;
  }

  /** Runs batches for one pool until nothing is waiting; requests arriving meanwhile join the next one. */
  async function drain(key: string, queue: { pending: Pending[]; running: boolean }): Promise<void> {
    queue.running = true;
    try {
      while (queue.pending.length > 0) {
        const batch = queue.pending.splice(0, MAX_BATCH);
        try {
          const outcomes = await runBatch(key, batch.map((p) => p.request));
          batch.forEach((p, i) => p.resolve(outcomes[i]!));
        } catch (error) {
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      queue.running = false;
      if (queue.pending.length === 0) queues.delete(key);
      else void drain(key, queue);
    }
  }

  async function tryLock(key: string): Promise<HeldLock | null> {
    return inSpan("lock.acquire", { "cls.lock.key": key }, async (span) => {
      const started = performance.now();
      try {
        const lock = await locks.acquire(key, { ttlMs: LOCK_TTL_MS, waitMs: LOCK_WAIT_MS });
        if (lock) span.setAttribute("cls.lock.fence", lock.fence);
        return lock;
      } catch (error) {
        // Redis is down or slow: carry on with Postgres alone, which is still correct.
        logger.warn({ err: error }, "lock store unavailable; allocating on Postgres alone");
        clsMetrics().lockUnavailable.add(1);
        return null;
      } finally {
        clsMetrics().lockWait.record((performance.now() - started) / 1000);
      }
    });
  }

  async function runBatch(key: string, requests: GrantRequest[]): Promise<GrantOutcome[]> {
    for (let attempt = 0; ; attempt++) {
      const lock = await tryLock(key);
      // After repeated stale fences, go on without one: the row lock alone is still exact.
      const fence = attempt < MAX_FENCE_RETRIES ? (lock?.fence ?? null) : null;
      try {
        const result = await inSpan("allocation.grant_batch", { "cls.batch.size": requests.length }, () =>
          db.transaction().execute((trx) => grantInTransaction(trx, requests, fence)),
        );
        if (result === "stale_fence") {
          clsMetrics().fenceRejections.add(1);
          const seen = await db.selectFrom("pool_usage").select("fence").where("pool_id", "=", requests[0]!.poolId).where("licence_type", "=", requests[0]!.licenceType).executeTakeFirst();
          if (seen) await locks.advanceFence(key, seen.fence).catch(() => {});
          continue;
        }
        return result;
      } finally {
        if (lock) {
          const released = await lock.release().catch(() => "expired" as const);
          if (released !== "released") logger.warn({ key, released }, "pool lock lost before release");
        }
      }
    }
  }

  async function grantInTransaction(
    trx: Transaction<AllocationDatabase>,
    requests: GrantRequest[],
    fence: number | null,
  ): Promise<GrantOutcome[] | "stale_fence"> {
    const { poolId, licenceType, now } = requests[0]!;
    // Locks are taken servers first, then the pool row, as every other writer does.
    // Hold each server's binding steady until commit: a pool switch or a revocation that
    // started first is waited for and then seen, so no grant lands in a pool the server has
    // just left, or for a server that has just been revoked.
    const serverIds = [...new Set(requests.map((r) => r.serverId))];
    const { bindings, usage } = await lockServersThenUsage(trx, serverIds, poolId, licenceType);
    if (!usage) return requests.map(() => ({ kind: "exhausted", total: 0, used: 0 }));
    if (fence !== null && usage.fence >= fence) return "stale_fence";
    if (usage.expires_at <= now) return requests.map(() => ({ kind: "expired", expiresAt: usage.expires_at }));

    const outcomes: (GrantOutcome | undefined)[] = new Array(requests.length);
    const firstOfCamera = new Map<string, number>();
    const wanting: number[] = [];
    for (const [i, request] of requests.entries()) {
      const binding = bindings.get(request.serverId);
      // A caller that gave up must not be granted a licence nobody will ever hear of.
      if (request.signal?.aborted) outcomes[i] = { kind: "abandoned" };
      else if (binding?.state !== "active") outcomes[i] = { kind: "revoked" };
      else if (binding.pool_id !== poolId) outcomes[i] = { kind: "pool_changed" };
      else {
        const camera = cameraKey(request.serverId, request.encoderId, request.cameraId);
        if (!firstOfCamera.has(camera)) {
          firstOfCamera.set(camera, i);
          wanting.push(i);
        }
      }
    }

    const room = Math.max(0, usage.capacity - usage.used);
    const keyOf = (i: number) => cameraKey(requests[i]!.serverId, requests[i]!.encoderId, requests[i]!.cameraId);
    // The insert adds what it inserted to `used` in the same statement, only where it fits.
    const insertAndCount = (indexes: number[]) => insertAndCountAllocations(trx, { poolId, licenceType, now, fence, cameras: indexes.map((i) => requests[i]!) });

    // Cameras that already hold a licence are answered with it. When everything fits (the
    // usual case) the insert finds them itself, through the one-active-per-camera index;
    // otherwise they are looked up first, so the room goes to cameras that need it.
    let granted: AllocationRow[];
    let usedAfter: number | undefined;
    let fresh: number[];
    if (wanting.length <= room) {
      ({ inserted: granted, usedAfter } = await insertAndCount(wanting));
      const grantedKeys = new Set(granted.map((row) => cameraKey(row.server_id, row.encoder_id, row.camera_id)));
      fresh = wanting.filter((i) => grantedKeys.has(keyOf(i)));
      const holding = wanting.filter((i) => !grantedKeys.has(keyOf(i)));
      const existing = await findActiveForCameras(trx, holding.map((i) => requests[i]!));
      for (const i of holding) outcomes[i] = { kind: "existing", allocation: existing.get(keyOf(i))! };
    } else {
      const existing = await findActiveForCameras(trx, wanting.map((i) => requests[i]!));
      fresh = [];
      for (const i of wanting) {
        const held = existing.get(keyOf(i));
        if (held) outcomes[i] = { kind: "existing", allocation: held };
        else fresh.push(i);
      }
      ({ inserted: granted, usedAfter } = await insertAndCount(fresh.slice(0, room)));
      // The pool row is locked and these cameras hold nothing, so none can conflict.
      if (granted.length !== Math.min(room, fresh.length)) throw new Error("an allocation appeared for a camera while its pool row was locked");
    }
    const byCamera = new Map(granted.map((row) => [cameraKey(row.server_id, row.encoder_id, row.camera_id), row]));
    for (const i of fresh.slice(0, room)) outcomes[i] = { kind: "granted", allocation: byCamera.get(keyOf(i))! };
    for (const i of fresh.slice(room)) outcomes[i] = { kind: "exhausted", total: usage.capacity, used: usage.used + granted.length };
    // Later duplicates of a camera in the same batch get what its first request got.
    for (const [i, request] of requests.entries()) {
      if (outcomes[i]) continue;
      const first = outcomes[firstOfCamera.get(cameraKey(request.serverId, request.encoderId, request.cameraId))!]!;
      outcomes[i] = first.kind === "granted" ? { kind: "existing", allocation: first.allocation } : first;
    }

    const events: OutboxEvent[] = [];
    if (usedAfter !== undefined) {
      for (const percent of thresholdsCrossed({ capacity: usage.capacity, usedBefore: usage.used, usedAfter })) {
        events.push({
          accountId: requests[0]!.accountId,
          type: "pool.usage_crossed",
          data: { pool_id: poolId, licence_type: licenceType, threshold_percent: percent, total: usage.capacity, used: usedAfter },
          occurredAt: now,
        });
      }
    }
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome?.kind !== "exhausted") continue;
      const request = requests[i]!;
      events.push({
        accountId: request.accountId,
        type: "acquisition.refused",
        data: { pool_id: poolId, licence_type: licenceType, total: outcome.total, used: outcome.used, server_id: request.serverId, encoder_id: request.encoderId, camera_id: request.cameraId },
        occurredAt: now,
      });
    }
    await recordEvents(trx, events);
    return outcomes as GrantOutcome[];
  }

  return { grant };
}

export type PoolAllocator = ReturnType<typeof createPoolAllocator>;
