import type { AllocationRecord, UsageRecord } from "./database-state.js";
import { lostAttempts, type Attempt, type Op } from "./history.js";
import type { SampleReport } from "./sampler.js";

export interface Figures {
  ops: number;
  acquires: number;
  /** Acquires answered with a licence (new or the one already held). */
  grants: number;
  /** Distinct allocations the clients were given. */
  allocations: number;
  /** Acquires answered with the allocation the camera already held (idempotent repeats). */
  repeats: number;
  refusals: number;
  releases: number;
  gaveUp: number;
  attempts: number;
  /** Attempts without a usable reply, each retried on another replica. */
  lostAttempts: number;
  /** Operations that needed more than one attempt and then got an answer. */
  recovered: number;
  /** Acquires whose retry returned the allocation an earlier, lost attempt had committed. */
  retryReturnedCommitted: number;
  /** Allocations in the table that no client was ever told about (lost attempts). */
  unacknowledged: number;
  /** Of those, still active at the end: licences held for cameras whose clients don't know it. */
  unacknowledgedActive: number;
  /** Latency of answered attempts, in ms (figures only, never asserted). */
  answeredP50Ms: number;
  answeredP99Ms: number;
  /** Cameras with an attempt that may have landed late, checked against the table only. */
  tainted: number;
  samples: number;
  failedSamples: number;
}

export interface CheckReport {
  violations: string[];
  figures: Figures;
}

interface CameraState {
  /** What the camera holds as far as the history proves: an allocation id, nothing, or unknown. */
  held: string | null | "unknown";
  /**
   * An attempt of this camera may take effect after its client stopped waiting (a timeout,
   * or a replica frozen with the request in hand): from then on only the table checks apply.
   */
  tainted: boolean;
  lostAcquireAttempts: number;
  /** Upper bound on the releases that may have taken effect. */
  possibleReleases: number;
}

/**
 * Reads the clients' history and the allocation tables and lists every breach of SPEC L7
 * and L7a: more active than capacity (at the end or in any sample), `used` differing from
 * the active count, a camera given a second allocation without a release in between, an
 * acknowledged allocation missing or ended without a release, and more allocations than
 * the history can explain.
 */
export function checkHistory(input: {
  history: readonly Op[];
  /** Lost attempts that may still take effect later, rather than before their client gave up on them. */
  landsLate: (attempt: Attempt) => boolean;
  allocations: readonly AllocationRecord[];
  usage: readonly UsageRecord[];
  samples: SampleReport;
  capacities: ReadonlyMap<string, number>;
}): CheckReport {
  const violations: string[] = [];
  const fail = (message: string) => violations.push(message);
  const rowsById = new Map(input.allocations.map((row) => [row.allocation_id, row]));

  // At the end: every pool within capacity, and `used` exactly the active count.
  for (const row of input.usage) {
    if (row.active > row.capacity) fail(`pool ${row.pool_id}/${row.licence_type}: ${row.active} active allocations, capacity ${row.capacity}`);
    if (row.used !== row.active) fail(`pool ${row.pool_id}/${row.licence_type}: used=${row.used} but ${row.active} active allocations`);
  }
  for (const message of input.samples.violations) fail(`during the run, ${message}`);

  const acknowledged = new Set<string>();
  const cameras = new Map<string, CameraState>();
  const ops = [...input.history].sort((a, b) => a.startedAt - b.startedAt);
  let retryReturnedCommitted = 0;
  let repeats = 0;
  const fresh = (): CameraState => ({ held: null, tainted: false, lostAcquireAttempts: 0, possibleReleases: 0 });
  const holds = (state: CameraState): string | undefined =>
    !state.tainted && typeof state.held === "string" && state.held !== "unknown" ? state.held : undefined;

  for (const op of ops) {
    const state = cameras.get(op.camera) ?? fresh();
    cameras.set(op.camera, state);
    const lost = lostAttempts(op);
    if (op.attempts.some(input.landsLate)) state.tainted = true;
    const where = `${op.kind} ${op.id} of camera ${op.camera}`;
    if (op.kind === "acquire") state.lostAcquireAttempts += lost;
    else state.possibleReleases += lost;

    const outcome = op.outcome;
    switch (outcome.type) {
      case "granted": {
        const id = outcome.allocationId;
        acknowledged.add(id);
        const row = rowsById.get(id);
        if (!row) fail(`${where}: was granted ${id}, which is not in the allocations table`);
        else if (row.camera !== op.camera) fail(`${where}: was granted ${id}, which the table holds for ${row.camera}`);
        const before = holds(state);
        if (before !== undefined && before !== id) fail(`${where}: was granted a second allocation ${id} while it held ${before} and had not released it`);
        if (state.held === id) repeats++;
        const answered = op.attempts.at(-1)!;
        if (row && lost > 0 && row.acquired_at.getTime() < answered.startedAt && row.acquired_at.getTime() >= op.startedAt) retryReturnedCommitted++;
        state.held = id;
        break;
      }
      case "refused":
        if (outcome.code !== "ResourceExhausted") fail(`${where}: unexpected refusal ${outcome.code}: ${outcome.message}`);
        else {
          const capacity = input.capacities.get(op.camera);
          if (outcome.total !== capacity || outcome.used === undefined || outcome.used > outcome.total!) {
            fail(`${where}: refusal details total=${outcome.total} used=${outcome.used}, capacity is ${capacity}`);
          }
          if (holds(state) !== undefined) fail(`${where}: refused although the camera held ${state.held}`);
        }
        state.held = null;
        break;
      case "released":
        if (outcome.released) state.possibleReleases++;
        if (!outcome.released && holds(state) !== undefined && lost === 0) {
          fail(`${where}: the service said the camera held nothing, but it held ${state.held}`);
        }
        state.held = null;
        break;
      case "gave_up":
        if (op.kind === "release" || state.held === null) state.held = "unknown";
        break;
    }
  }

  // The table against the history, camera by camera.
  const rowsByCamera = new Map<string, AllocationRecord[]>();
  for (const row of input.allocations) rowsByCamera.set(row.camera, [...(rowsByCamera.get(row.camera) ?? []), row]);
  let unacknowledged = 0;
  let unacknowledgedActive = 0;
  for (const [camera, rows] of rowsByCamera) {
    const state = cameras.get(camera) ?? fresh();
    const active = rows.filter((row) => row.state === "active");
    if (active.length > 1) fail(`camera ${camera}: ${active.length} active allocations`);
    const orphans = rows.filter((row) => !acknowledged.has(row.allocation_id));
    unacknowledged += orphans.length;
    unacknowledgedActive += orphans.filter((row) => row.state === "active").length;
    if (orphans.length > state.lostAcquireAttempts) {
      fail(`camera ${camera}: ${orphans.length} allocations no client was told of, but only ${state.lostAcquireAttempts} acquire attempts were lost`);
    }
    const ended = rows.filter((row) => row.state !== "active");
    for (const row of ended) {
      if (row.state !== "released") fail(`camera ${camera}: allocation ${row.allocation_id} ended as ${row.state} (${row.end_reason}); nothing here revokes or reclaims`);
    }
    if (ended.length > state.possibleReleases) fail(`camera ${camera}: ${ended.length} allocations ended, but at most ${state.possibleReleases} releases may have happened`);
    if (state.tainted) continue;
    const last = holds(state);
    if (last !== undefined && active[0]?.allocation_id !== last) {
      fail(`camera ${camera}: last granted ${last}, never released, but the active allocation is ${active[0]?.allocation_id ?? "none"}`);
    }
    if (state.held === null && active.length > 0) fail(`camera ${camera}: released or refused last, yet ${active[0]!.allocation_id} is active`);
  }

  const acquires = input.history.filter((op) => op.kind === "acquire");
  const latencies = input.history
    .flatMap((op) => op.attempts)
    .filter((a) => a.result === "answered")
    .map((a) => a.endedAt - a.startedAt)
    .sort((a, b) => a - b);
  const figures: Figures = {
    ops: input.history.length,
    acquires: acquires.length,
    grants: acquires.filter((op) => op.outcome.type === "granted").length,
    allocations: acknowledged.size,
    repeats,
    refusals: acquires.filter((op) => op.outcome.type === "refused").length,
    releases: input.history.filter((op) => op.kind === "release" && op.outcome.type === "released").length,
    gaveUp: input.history.filter((op) => op.outcome.type === "gave_up").length,
    attempts: input.history.reduce((n, op) => n + op.attempts.length, 0),
    lostAttempts: input.history.reduce((n, op) => n + lostAttempts(op), 0),
    recovered: input.history.filter((op) => op.attempts.length > 1 && op.outcome.type !== "gave_up").length,
    retryReturnedCommitted,
    unacknowledged,
    unacknowledgedActive,
    answeredP50Ms: percentile(latencies, 0.5),
    answeredP99Ms: percentile(latencies, 0.99),
    tainted: [...cameras.values()].filter((state) => state.tainted).length,
    samples: input.samples.samples,
    failedSamples: input.samples.failed,
  };
  return { violations, figures };
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
