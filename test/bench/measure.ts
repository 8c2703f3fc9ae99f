/**
 * The benchmark's measurements, shared by `npm run bench` (run.ts): one load-generator run,
 * one pgbench run, one daily-check run, each with the CPU of every process group over its
 * measured window. Settings come from the environment (see run.ts).
 */
import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { TEST_DATABASE_URL } from "../support/env.js";
import type { Baseline, PgbenchResult } from "./baseline.js";
import { runDailyCheck, type DailyCheckResult } from "./daily-check.js";
import type { LoadJob, LoadResult } from "./load-generator.js";
import { monotonicNowUs, type MonotonicWindow } from "./profile.js";
import type { Fixture, SeedPlan } from "./seed.js";
import { REPO_ROOT, WORK_DIR, type RunningService } from "./service.js";
import { peakRssMb, resetPeakRss, round, startCpuWindow, waitForQuiet, type CpuShare } from "./stats.js";

export const RUNS = Number(process.env.BENCH_RUNS ?? 3);
export const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
export const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
export const PROFILE = process.env.BENCH_PROFILE !== "0";
/** Before each measurement, wait (up to BENCH_QUIET_WAIT_S) for the machine to be at most this busy. */
export const QUIET_PCT = Number(process.env.BENCH_QUIET_PCT ?? 15);
export const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT_S ?? 120);
/** Measured seconds of each profiled run. */
export const PROFILE_SECONDS = 6;
export const CONCURRENCY = 64;
export const CONNECTIONS = 64;
export const PGBENCH_THREADS = 2;
export const PLAN: SeedPlan = { spreadPools: 1_000, hotServers: CONCURRENCY, dailyServers: 4, encodersPerBatch: 1_000, camerasPerEncoder: 2 };

export const GOALS = {
  spreadRatio: 0.5,
  hotRatio: 2,
  p99Ms: 25,
  rssMb: 150,
};

export function log(message: string): void {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** One statement on the admin connection, or on `database` of the same server. */
export async function adminQuery<T extends pg.QueryResultRow>(text: string, database?: string): Promise<T[]> {
  const url = new URL(TEST_DATABASE_URL);
  if (database) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/** Other work on the machine competes with the bench: wait for it to settle, and record it. */
export async function quiet(): Promise<number> {
  const busy = await waitForQuiet(QUIET_PCT, QUIET_WAIT_S * 1000);
  if (busy > QUIET_PCT) log(`machine still ${busy}% busy after ${QUIET_WAIT_S} s of waiting; measuring anyway (recorded)`);
  return busy;
}

/** Runs one load-generator process and collects the service's CPU over its measured window. */
export async function runLoad(service: RunningService, job: Omit<LoadJob, "url" | "caPem" | "leaseKey">, caPem: string): Promise<{ load: LoadResult; cpu: CpuShare; rssMb: number; busyBefore: number; window: MonotonicWindow }> {
  const busyBefore = await quiet();
  const dir = join(WORK_DIR, "jobs");
  mkdirSync(dir, { recursive: true });
  const jobFile = join(dir, `job-${Date.now()}.json`);
  writeFileSync(jobFile, JSON.stringify({ ...job, url: service.publicUrl, caPem, leaseKey: service.leaseKey } satisfies LoadJob));
  resetPeakRss(service.pid);
  const child = spawn(process.execPath, ["--import", "tsx", join("test", "bench", "load-generator.ts"), jobFile], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  let stopWindow: (() => CpuShare) | undefined;
  let cpu: CpuShare | undefined;
  const window: MonotonicWindow = { startUs: 0, endUs: 0 };
  let resultLine = "";
  let errors = "";
  let buffered = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line === "phase measure") {
        window.startUs = monotonicNowUs();
        stopWindow = startCpuWindow(service.pid, () => []);
      } else if (line === "phase done" && stopWindow) {
        window.endUs = monotonicNowUs();
        cpu = stopWindow();
      }
      else if (line.startsWith("result ")) resultLine = line.slice("result ".length);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  rmSync(jobFile, { force: true });
  if (code !== 0 || !resultLine || !cpu) throw new Error(`load generator exited ${code}:\n${errors}`);
  const load = JSON.parse(resultLine) as LoadResult;
  const failures = Object.values(load.errors).reduce((sum, n) => sum + n, 0);
  if (failures > 0) throw new Error(`${failures} calls failed (${JSON.stringify(load.errors)}); first: ${load.firstError}`);
  if (load.leasesVerified < Math.min(job.verifySamples, load.completed)) throw new Error(`only ${load.leasesVerified} leases verified`);
  return { load, cpu: { ...cpu, loadgen_pct: load.cpuPct }, rssMb: round(peakRssMb(service.pid)), busyBefore, window };
}

/** One pgbench run at the scenario's concurrency; with `ratePerSecond`, at that fixed rate instead of flat out. */
export async function runPgbench(baseline: Baseline, script: "spread" | "hot", ratePerSecond?: number): Promise<{ result: PgbenchResult; cpu: CpuShare; busyBefore: number }> {
  const busyBefore = await quiet();
  const pids: number[] = [];
  let stopWindow: (() => CpuShare) | undefined;
  const timer = setTimeout(() => (stopWindow = startCpuWindow(null, () => pids)), WARMUP_SECONDS * 1000 + 300);
  let cpu: CpuShare | undefined;
  const endTimer = setTimeout(() => (cpu = stopWindow?.()), (WARMUP_SECONDS + SECONDS) * 1000 - 100);
  const result = await baseline.run(script, { clients: CONCURRENCY, threads: PGBENCH_THREADS, warmupSeconds: WARMUP_SECONDS, seconds: SECONDS, ...(ratePerSecond ? { ratePerSecond } : {}) }, (pid) => pids.push(pid));
  clearTimeout(timer);
  clearTimeout(endTimer);
  cpu ??= stopWindow?.();
  if (result.failed > 0) throw new Error(`pgbench: ${result.failed} failed transactions`);
  return { result, cpu: cpu!, busyBefore };
}

export async function runDaily(service: RunningService, fixture: Fixture, leasesPerBatch: number): Promise<{ result: DailyCheckResult; cpu: CpuShare; rssMb: number; busyBefore: number }> {
  const busyBefore = await quiet();
  const pids: number[] = [];
  resetPeakRss(service.pid);
  let stopWindow: (() => CpuShare) | undefined;
  let cpu: CpuShare | undefined;
  const timer = setTimeout(() => (stopWindow = startCpuWindow(service.pid, () => pids)), WARMUP_SECONDS * 1000 + 300);
  const endTimer = setTimeout(() => (cpu = stopWindow?.()), (WARMUP_SECONDS + SECONDS) * 1000 - 100);
  const result = await runDailyCheck({
    publicUrl: service.publicUrl,
    servers: fixture.daily,
    encodersPerBatch: PLAN.encodersPerBatch,
    leasesPerBatch,
    warmupSeconds: WARMUP_SECONDS,
    seconds: SECONDS,
    onStart: (pid) => pids.push(pid),
  });
  clearTimeout(timer);
  clearTimeout(endTimer);
  cpu ??= stopWindow?.();
  if (result.failed > 0) throw new Error(`daily check: ${result.failed} batches failed`);
  return { result, cpu: cpu!, rssMb: round(peakRssMb(service.pid)), busyBefore };
}

export const spreadJob = (fixture: Fixture, seconds = SECONDS, warmupSeconds = WARMUP_SECONDS) => ({
  connections: CONNECTIONS,
  concurrency: CONCURRENCY,
  warmupMs: warmupSeconds * 1000,
  durationMs: seconds * 1000,
  targets: fixture.spread,
  pick: "random" as const,
  verifySamples: 200,
});

export const hotJob = (fixture: Fixture, seconds = SECONDS, warmupSeconds = WARMUP_SECONDS) => ({
  connections: CONNECTIONS,
  concurrency: CONCURRENCY,
  warmupMs: warmupSeconds * 1000,
  durationMs: seconds * 1000,
  targets: fixture.hot,
  pick: "worker" as const,
  verifySamples: 200,
});

