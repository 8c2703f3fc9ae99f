/**
 * The benchmark's load generator: a separate Node process (never the service's) that sends
 * authenticated Connect calls over HTTP/2 + TLS to the allocation service's public port.
 *
 *   node --import tsx test/bench/load-generator.ts <job.json>
 *
 * Each AcquireLicence names a camera never used before (`<tag>-<worker>-<n>`), so every call
 * takes a new licence rather than taking the idempotent path.
 *
 * - Closed loop (`concurrency`): that many calls in flight, each worker sending its next call
 *   when the last one answers (64 workers ≈ 64 EdgeVis Servers calling at once).
 * - Open loop (`ratePerSecond`): calls start on a fixed schedule whatever the answers do, and
 *   latency is measured from the scheduled start, so a slow answer is not hidden by the
 *   generator waiting for it (no coordinated omission).
 *
 * Prints `phase measure` when the measured window opens, `phase done` when it closes, and
 * finally one line `result <json>` (a LoadResult).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { verifyLease } from "@cls/lease";
import { AcquireLicenceRequestSchema, AcquireLicenceResponseSchema } from "@cls/proto";
import { ACQUIRE_PATH, errorCodeOf, errorMessageOf, openSession, unary } from "./h2.js";
import { quantile, round } from "./stats.js";

/** One EdgeVis Server's identity for a call: its access token and a registered v9 encoder. */
export interface AcquireTarget {
  token: string;
  encoderId: string;
}

export interface LoadJob {
  url: string;
  caPem: string;
  connections: number;
  /** Closed loop: calls in flight. */
  concurrency?: number;
  /** Open loop: calls started per second. */
  ratePerSecond?: number;
  warmupMs: number;
  durationMs: number;
  targets: AcquireTarget[];
  /** `random`: each call picks a target at random; `worker`: worker i always uses target i mod n. */
  pick: "random" | "worker";
  /** The lease key the service publishes, to verify a sample of the leases. */
  leaseKey: { keyId: string; publicKeyBase64: string };
  /** How many leases of the measured window to decode and verify. */
  verifySamples: number;
}

export interface LoadResult {
  /** Successful calls answered inside the measured window. */
  completed: number;
  errors: Record<string, number>;
  firstError?: string;
  windowMs: number;
  perSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Leases decoded and verified against the pinned key (Ed25519), of verifySamples. */
  leasesVerified: number;
  /** The generator's own CPU over the window, percent of one core. */
  cpuPct: number;
  /** Largest number of calls in flight at once (open loop). */
  maxInFlight: number;
}

async function run(job: LoadJob): Promise<LoadResult> {
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < job.connections; i++) sessions.push(await openSession(job.url, job.caPem));
  const pinned = [{ keyId: job.leaseKey.keyId, publicKey: new Uint8Array(Buffer.from(job.leaseKey.publicKeyBase64, "base64")) }];
  const tag = randomBytes(4).toString("hex");
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let firstError: string | undefined;
  let completed = 0;
  let leasesVerified = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let sequence = 0;

  const start = performance.now();
  const windowStart = start + job.warmupMs;
  const windowEnd = windowStart + job.durationMs;
  let cpuAtWindowStart: NodeJS.CpuUsage | undefined;
  let cpuAtWindowEnd: NodeJS.CpuUsage | undefined;
  const windowTimers = [
    setTimeout(() => {
      cpuAtWindowStart = process.cpuUsage();
      process.stdout.write("phase measure\n");
    }, job.warmupMs),
    setTimeout(() => {
      cpuAtWindowEnd = process.cpuUsage();
      process.stdout.write("phase done\n");
    }, job.warmupMs + job.durationMs),
  ];

  async function call(worker: number, scheduledAt: number): Promise<void> {
    const target = job.pick === "worker" ? job.targets[worker % job.targets.length]! : job.targets[Math.floor(Math.random() * job.targets.length)]!;
    const cameraId = `${tag}-${worker}-${sequence++}`;
    const body = toBinary(AcquireLicenceRequestSchema, create(AcquireLicenceRequestSchema, { encoderId: target.encoderId, cameraId }));
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    let result;
    try {
      result = await unary(sessions[worker % sessions.length]!, ACQUIRE_PATH, body, target.token);
    } catch (error) {
      result = { status: 0, body: Buffer.from(JSON.stringify({ code: "transport", message: (error as Error).message })) };
    } finally {
      inFlight--;
    }
    const end = performance.now();
    if (end < windowStart || end > windowEnd) return;
    if (result.status !== 200) {
      const code = errorCodeOf(result);
      errors[code] = (errors[code] ?? 0) + 1;
      firstError ??= `${code}: ${errorMessageOf(result)}`;
      return;
    }
    completed++;
    latencies.push(end - scheduledAt);
    if (leasesVerified < job.verifySamples) {
      const response = fromBinary(AcquireLicenceResponseSchema, result.body);
      const lease = verifyLease(response.lease!, pinned);
      if (lease.cameraId !== cameraId || response.allocation?.cameraId !== cameraId) throw new Error(`lease for ${lease.cameraId}, asked for ${cameraId}`);
      leasesVerified++;
    }
  }

  if (job.concurrency !== undefined) {
    const workers = Array.from({ length: job.concurrency }, async (_, worker) => {
      while (performance.now() < windowEnd) {
        const scheduledAt = performance.now();
        await call(worker, scheduledAt);
      }
    });
    await Promise.all(workers);
  } else if (job.ratePerSecond !== undefined) {
    const interval = 1000 / job.ratePerSecond;
    const pending = new Set<Promise<void>>();
    let next = start;
    let n = 0;
    while (next < windowEnd) {
      const now = performance.now();
      while (next <= now && next < windowEnd) {
        const promise = call(n, next);
        pending.add(promise);
        void promise.finally(() => pending.delete(promise));
        n++;
        next = start + n * interval;
      }
      await sleep(Math.max(0, Math.min(1, next - performance.now())));
    }
    await Promise.all(pending);
  } else {
    throw new Error("job needs concurrency or ratePerSecond");
  }
  // The window's closing mark must be out before the result (the open loop can finish a moment early).
  const leftMs = windowEnd - performance.now();
  if (leftMs > 0) await sleep(leftMs + 5);
  if (!cpuAtWindowEnd) throw new Error("the measured window never closed");
  for (const timer of windowTimers) clearTimeout(timer);
  for (const session of sessions) session.close();

  const cpuStart = cpuAtWindowStart ?? { user: 0, system: 0 };
  const cpuEnd = cpuAtWindowEnd ?? process.cpuUsage();
  const windowCpuMicros = cpuEnd.user - cpuStart.user + (cpuEnd.system - cpuStart.system);
  const sorted = Float64Array.from(latencies).sort();
  const mean = latencies.reduce((sum, value) => sum + value, 0) / Math.max(1, latencies.length);
  return {
    completed,
    errors,
    ...(firstError ? { firstError } : {}),
    windowMs: job.durationMs,
    perSecond: round((completed * 1000) / job.durationMs),
    latencyMs: {
      p50: round(quantile(sorted, 0.5), 2),
      p90: round(quantile(sorted, 0.9), 2),
      p99: round(quantile(sorted, 0.99), 2),
      max: round(quantile(sorted, 1), 2),
      mean: round(mean, 2),
    },
    leasesVerified,
    cpuPct: round((100 * windowCpuMicros) / 1000 / job.durationMs),
    maxInFlight,
  };
}

const jobFile = process.argv[2];
if (!jobFile) {
  console.error("usage: load-generator.ts <job.json>");
  process.exit(2);
}
const result = await run(JSON.parse(readFileSync(jobFile, "utf8")) as LoadJob);
process.stdout.write(`result ${JSON.stringify(result)}\n`);
process.exit(0);
