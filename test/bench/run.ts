/**
 * `npm run bench`: the allocation service's throughput, latency and memory through its real
 * public path, against pgbench running the minimal SQL of an allocation on the same machine.
 * Writes test/bench/results/latest.json and latest.md. See test/bench/README.md.
 *
 * Environment (all optional): BENCH_RUNS (3), BENCH_SECONDS (8, the measured window of each
 * run), BENCH_WARMUP_SECONDS (2), BENCH_PROFILE (1; 0 skips the --cpu-prof pass),
 * BENCH_QUIET_PCT (15) and BENCH_QUIET_WAIT_S (120): before each measurement, wait that long
 * at most for the machine to be that idle; BENCH_BUNDLE (a prebuilt allocation bundle to
 * measure instead of building the working tree); BENCH_SERVICE_NODE_ARGS (extra node flags
 * for the service, after the chart's default V8 heap limits, so they can override them); DATABASE_URL (an admin connection to Postgres),
 * REDIS_URL.
 */
import { spawnSync } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { TEST_DATABASE_URL, TEST_REDIS_URL } from "../support/env.js";
import { createBaseline, type Baseline } from "./baseline.js";
import { h2loadAvailable, runDailyCheck, verifyDailyBatch } from "./daily-check.js";
import {
  adminQuery,
  CONCURRENCY,
  CONNECTIONS,
  GOALS,
  hotJob,
  log,
  PGBENCH_THREADS,
  PLAN,
  PROFILE,
  PROFILE_SECONDS,
  quiet,
  RUNS,
  runDaily,
  runLoad,
  runPgbench,
  SECONDS,
  spreadJob,
  WARMUP_SECONDS,
} from "./measure.js";
import { monotonicNowUs, summariseProfile, type MonotonicWindow, type ProfileSummary } from "./profile.js";
import { writeReport, type BenchResults, type RunRecord, type ScenarioResult } from "./report.js";
import { seed, LICENCE_TYPE, type Fixture } from "./seed.js";
import {
  buildAllocationBundle,
  migrateService,
  prepareKeys,
  REPO_ROOT,
  SERVICE_DATABASE_MAX_CONNECTIONS,
  startNotificationStub,
  startService,
  WORK_DIR,
  type RunningService,
  type ServiceSettings,
} from "./service.js";
import { machineBusyPct, median, round } from "./stats.js";

/** pgbench and h2load must be installed; say how when they are not. */
async function preflight(): Promise<void> {
  const missing: string[] = [];
  if (spawnSync("pgbench", ["--version"]).status !== 0) missing.push("pgbench (Debian: apt-get install -y postgresql-client)");
  if (!(await h2loadAvailable())) missing.push("h2load (Debian: apt-get update && apt-get install -y nghttp2-client)");
  if (missing.length > 0) {
    console.error(`npm run bench needs:\n${missing.map((m) => `  - ${m}`).join("\n")}`);
    process.exit(1);
  }
}

function versionOf(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: "utf8" });
  return (result.stdout || result.stderr || "").split("\n")[0]!.trim();
}

async function main(): Promise<void> {
  await preflight();
  const started = Date.now();
  const background = await machineBusyPct(2_000);
  log(`machine busy before start (other work): ${background}%`);

  const bundle = process.env.BENCH_BUNDLE ?? (log("building the service bundle (deploy/build.ts)"), await buildAllocationBundle());
  const nodeArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const keys = await prepareKeys();
  const notifications = await startNotificationStub();
  const databaseName = `cls_bench_${process.pid}_${Date.now().toString(36)}`;
  await adminQuery(`create database ${databaseName}`);
  const databaseUrl = new URL(TEST_DATABASE_URL);
  databaseUrl.pathname = `/${databaseName}`;
  const settings: ServiceSettings = { bundle, databaseUrl: databaseUrl.toString(), redisUrl: TEST_REDIS_URL, keys, notificationUrl: notifications.url };
  let service: RunningService | undefined;
  let baseline: Baseline | undefined;
  let fixture: Fixture | undefined;
  try {
    await migrateService(settings);
    service = await startService(settings, { nodeArgs });
    log(`service pid ${service.pid} at ${service.publicUrl}; seeding ${PLAN.spreadPools} + 2 pools, ${PLAN.spreadPools + PLAN.hotServers + PLAN.dailyServers} servers`);
    const seedStart = Date.now();
    fixture = await seed({ internalUrl: service.internalUrl, publicUrl: service.publicUrl, caPem: keys.tls.cert, tokens: keys.tokens, staff: keys.staff, plan: PLAN });
    const pinned = [{ keyId: service.leaseKey.keyId, publicKey: new Uint8Array(Buffer.from(service.leaseKey.publicKeyBase64, "base64")) }];
    const leasesPerBatch = await verifyDailyBatch({ publicUrl: service.publicUrl, caPem: keys.tls.cert, server: fixture.daily[0]!, encoders: PLAN.encodersPerBatch, pinned });
    log(`seeded in ${round((Date.now() - seedStart) / 1000)} s; one daily batch signs ${leasesPerBatch} leases (verified)`);
    // A production database has planner statistics; a freshly seeded one has none until autovacuum gets to it.
    await adminQuery("vacuum analyze", databaseName);
    baseline = await createBaseline(TEST_DATABASE_URL, PLAN.spreadPools);

    const spreadRuns: RunRecord[] = [];
    const hotRuns: RunRecord[] = [];
    const dailyRuns: RunRecord[] = [];
    for (let run = 1; run <= RUNS; run++) {
      // CLS and its baseline side by side, alternating, so drift on the machine hits both.
      const spread = await runLoad(service, spreadJob(fixture), keys.tls.cert);
      const spreadBase = await runPgbench(baseline, "spread");
      spreadRuns.push({ cls_per_s: spread.load.perSecond, baseline_per_s: spreadBase.result.tps, p50_ms: spread.load.latencyMs.p50, p99_ms: spread.load.latencyMs.p99, rss_mb: spread.rssMb, cpu_cls: spread.cpu, cpu_baseline: spreadBase.cpu, busy_before_pct: [spread.busyBefore, spreadBase.busyBefore] });
      log(`run ${run} acquire-spread: CLS ${spread.load.perSecond}/s (p99 ${spread.load.latencyMs.p99} ms) vs pgbench ${spreadBase.result.tps}/s; service CPU ${spread.cpu.service_pct}%`);

      const hot = await runLoad(service, hotJob(fixture), keys.tls.cert);
      const hotBase = await runPgbench(baseline, "hot");
      hotRuns.push({ cls_per_s: hot.load.perSecond, baseline_per_s: hotBase.result.tps, p50_ms: hot.load.latencyMs.p50, p99_ms: hot.load.latencyMs.p99, rss_mb: hot.rssMb, cpu_cls: hot.cpu, cpu_baseline: hotBase.cpu, busy_before_pct: [hot.busyBefore, hotBase.busyBefore] });
      log(`run ${run} acquire-hot: CLS ${hot.load.perSecond}/s (p99 ${hot.load.latencyMs.p99} ms) vs pgbench ${hotBase.result.tps}/s; service CPU ${hot.cpu.service_pct}%`);

      const daily = await runDaily(service, fixture, leasesPerBatch);
      dailyRuns.push({ cls_per_s: daily.result.encodersPerSecond, baseline_per_s: null, p50_ms: null, p99_ms: null, rss_mb: daily.rssMb, cpu_cls: daily.cpu, cpu_baseline: null, busy_before_pct: [daily.busyBefore], extra: { ...daily.result } });
      log(`run ${run} daily-check-batch: ${daily.result.encodersPerSecond} encoder checks/s, ${daily.result.leasesPerSecond} leases/s (batch ${daily.result.batchMeanMs} ms)`);
    }

    // Open loop at half the measured acquire-spread maximum.
    const spreadMax = median(spreadRuns.map((r) => r.cls_per_s!));
    const rate = Math.max(1, Math.round(spreadMax / 2));
    const latencyRuns: RunRecord[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const { connections, warmupMs, durationMs, targets, pick, verifySamples } = spreadJob(fixture);
      const open = await runLoad(service, { connections, ratePerSecond: rate, warmupMs, durationMs, targets, pick, verifySamples }, keys.tls.cert);
      // pgbench at the same rate: what the commit path alone gives at this load.
      const base = await runPgbench(baseline, "spread", rate);
      latencyRuns.push({
        cls_per_s: open.load.perSecond,
        baseline_per_s: null,
        p50_ms: open.load.latencyMs.p50,
        p99_ms: open.load.latencyMs.p99,
        rss_mb: open.rssMb,
        cpu_cls: open.cpu,
        cpu_baseline: base.cpu,
        busy_before_pct: [open.busyBefore, base.busyBefore],
        extra: {
          rate_per_s: rate,
          p90_ms: open.load.latencyMs.p90,
          max_ms: open.load.latencyMs.max,
          max_in_flight: open.load.maxInFlight,
          baseline_p50_ms: base.result.latencyMs?.p50 ?? null,
          baseline_p99_ms: base.result.latencyMs?.p99 ?? null,
          baseline_max_ms: base.result.latencyMs?.max ?? null,
        },
      });
      log(`run ${run} latency at ${rate}/s: p50 ${open.load.latencyMs.p50} ms, p99 ${open.load.latencyMs.p99} ms (achieved ${open.load.perSecond}/s); pgbench at that rate p99 ${base.result.latencyMs?.p99} ms`);
    }
    const peakRss = Math.max(...[...spreadRuns, ...hotRuns, ...dailyRuns, ...latencyRuns].map((r) => r.rss_mb ?? 0));
    await service.stop();
    service = undefined;

    // A CPU profile of the service per scenario: where its time goes.
    const profiles: Record<string, ProfileSummary> = {};
    if (PROFILE) {
      const profileDir = join(WORK_DIR, "profiles");
      rmSync(profileDir, { recursive: true, force: true });
      mkdirSync(profileDir, { recursive: true });
      for (const scenario of ["acquire-spread", "acquire-hot", "daily-check-batch"] as const) {
        const name = `${scenario}.cpuprofile`;
        const profiled = await startService(settings, { nodeArgs, cpuProfile: { dir: profileDir, name } });
        let window: MonotonicWindow;
        try {
          if (scenario === "acquire-spread") window = (await runLoad(profiled, spreadJob(fixture, PROFILE_SECONDS, 1), keys.tls.cert)).window;
          else if (scenario === "acquire-hot") window = (await runLoad(profiled, hotJob(fixture, PROFILE_SECONDS, 1), keys.tls.cert)).window;
          else {
            await quiet();
            const startUs = monotonicNowUs() + 1_500_000;
            await runDailyCheck({ publicUrl: profiled.publicUrl, servers: fixture.daily, encodersPerBatch: PLAN.encodersPerBatch, leasesPerBatch, warmupSeconds: 1, seconds: PROFILE_SECONDS, onStart: () => {} });
            window = { startUs, endUs: monotonicNowUs() - 200_000 };
          }
        } finally {
          await profiled.stop();
        }
        profiles[scenario] = summariseProfile(join(profileDir, name), bundle, 12, window);
        log(`profiled ${scenario}: busy ${profiles[scenario].busyPct}%, top owner ${profiles[scenario].owners[0]?.owner} ${profiles[scenario].owners[0]?.pct}%`);
      }
    }

    const pct = (values: RunRecord[], key: "cls_per_s" | "baseline_per_s" | "p50_ms" | "p99_ms") => round(median(values.map((r) => r[key]!)));
    const scenario = (name: string, runs: RunRecord[], withBaseline: boolean, withLatency: boolean, unit: string, loadGenerator: string): ScenarioResult => {
      const cls = pct(runs, "cls_per_s");
      const base = withBaseline ? pct(runs, "baseline_per_s") : null;
      const baselineLatency = (key: string) => {
        const values = runs.map((r) => r.extra?.[key]).filter((v): v is number => typeof v === "number");
        return values.length > 0 ? round(median(values)) : null;
      };
      return {
        name,
        cls_per_s: cls,
        baseline_per_s: base,
        ratio: base ? round(cls / base, 2) : null,
        p50_ms: withLatency ? pct(runs, "p50_ms") : null,
        p99_ms: withLatency ? pct(runs, "p99_ms") : null,
        rss_mb: round(Math.max(...runs.map((r) => r.rss_mb ?? 0))),
        ...(runs.some((r) => r.extra?.baseline_p99_ms !== undefined) ? { baseline_p50_ms: baselineLatency("baseline_p50_ms"), baseline_p99_ms: baselineLatency("baseline_p99_ms") } : {}),
        unit,
        load_generator: loadGenerator,
        runs,
      };
    };
    const nodeGenerator = `separate Node process (test/bench/load-generator.ts): Connect over HTTP/2 + TLS, ${CONNECTIONS} connections`;
    const results: BenchResults = {
      generated_at: new Date().toISOString(),
      duration_s: round((Date.now() - started) / 1000, 0),
      runs: RUNS,
      window_s: SECONDS,
      warmup_s: WARMUP_SECONDS,
      goals: { acquire_spread_ratio: GOALS.spreadRatio, acquire_hot_ratio: GOALS.hotRatio, p99_ms: GOALS.p99Ms, rss_mb: GOALS.rssMb },
      machine: {
        cpus: cpus().length,
        cpu_model: cpus()[0]?.model ?? "",
        memory_gb: round(totalmem() / 1024 ** 3),
        node: process.version,
        postgres: (await adminQuery<{ version: string }>("select version()"))[0]!.version.split(" on ")[0]!,
        postgres_settings: Object.fromEntries(
          (await adminQuery<{ name: string; setting: string; unit: string | null }>("select name, setting, unit from pg_settings where name in ('max_connections','shared_buffers','synchronous_commit','fsync','wal_sync_method','commit_delay')")).map((r) => [r.name, `${r.setting}${r.unit ?? ""}`]),
        ),
        redis: await redisVersion(),
        pgbench: versionOf("pgbench", ["--version"]),
        h2load: versionOf("h2load", ["--version"]),
        background_busy_pct_before: background,
      },
      service: {
        process: process.env.BENCH_BUNDLE
          ? `node ${[...nodeArgs, bundle].join(" ")} serve (BENCH_BUNDLE), NODE_ENV=production, --enable-source-maps`
          : `node ${[...nodeArgs, "node_modules/.cache/cls-bench/build/allocation.mjs"].join(" ")} serve (the deploy/build.ts bundle the image runs), NODE_ENV=production, --enable-source-maps`,
        database_max_connections: SERVICE_DATABASE_MAX_CONNECTIONS,
        redis: TEST_REDIS_URL,
        log_level: "warn",
      },
      scenarios: [
        scenario("acquire-spread", spreadRuns, true, true, "acquires/s", nodeGenerator),
        scenario("acquire-hot", hotRuns, true, true, "acquires/s", nodeGenerator),
        scenario("daily-check-batch", dailyRuns, false, false, "encoder checks/s", `h2load, ${PLAN.dailyServers} processes × 1 connection × 1 stream (one per server)`),
        scenario("latency-at-half-spread", latencyRuns, false, true, "acquires/s (offered: half the acquire-spread median)", `${nodeGenerator}, open loop at a fixed rate`),
        {
          name: "service-peak-rss",
          cls_per_s: null,
          baseline_per_s: null,
          ratio: null,
          p50_ms: null,
          p99_ms: null,
          rss_mb: peakRss,
          unit: "MB (VmHWM of the service process, reset before each scenario)",
          load_generator: "all of the above",
          runs: [],
        },
      ],
      plan: { ...PLAN, concurrency: CONCURRENCY, pgbench_threads: PGBENCH_THREADS, licence_type: LICENCE_TYPE, leases_per_batch: leasesPerBatch },
      profiles,
    };
    const files = writeReport(results, join(REPO_ROOT, "test", "bench", "results"));
    log(`wrote ${files.map((f) => f.slice(REPO_ROOT.length + 1)).join(", ")} in ${results.duration_s} s`);
    for (const s of results.scenarios) {
      log(`${s.name}: cls ${s.cls_per_s ?? "-"} baseline ${s.baseline_per_s ?? "-"} ratio ${s.ratio ?? "-"} p50 ${s.p50_ms ?? "-"} p99 ${s.p99_ms ?? "-"} rss ${s.rss_mb ?? "-"}`);
    }
  } finally {
    if (service) await service.stop().catch(() => {});
    await baseline?.drop().catch((error: unknown) => log(`could not drop the pgbench database: ${String(error)}`));
    await adminQuery(`drop database if exists ${databaseName} with (force)`).catch((error: unknown) => log(`could not drop ${databaseName}: ${String(error)}`));
    if (fixture) await dropRedisKeys(fixture).catch(() => {});
    await notifications.close();
  }
}

async function redisVersion(): Promise<string> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "unknown";
  } finally {
    redis.disconnect();
  }
}

/** The fence counters never expire (by design): remove the benchmark's own. */
async function dropRedisKeys(fixture: Fixture): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const keys = fixture.allPoolIds.flatMap((poolId) => [`cls:lock:fence:pool:${poolId}:${LICENCE_TYPE}`, `cls:lock:pool:${poolId}:${LICENCE_TYPE}`]);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  } finally {
    redis.disconnect();
  }
}

await main();
process.exit(0);
