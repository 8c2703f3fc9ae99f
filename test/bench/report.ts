/** Writes the benchmark's results: latest.json (figures) and latest.md (for people). */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProfileSummary } from "./profile.js";
import { median, round, type CpuShare } from "./stats.js";

export interface RunRecord {
  cls_per_s: number | null;
  baseline_per_s: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  rss_mb: number | null;
  /** CPU by process group while CLS was measured. */
  cpu_cls: CpuShare | null;
  /** CPU by process group while pgbench was measured. */
  cpu_baseline: CpuShare | null;
  /** How busy the machine was (other work) just before each measurement of the run, percent. */
  busy_before_pct?: number[];
  extra?: Record<string, unknown>;
}

export interface ScenarioResult {
  name: string;
  cls_per_s: number | null;
  baseline_per_s: number | null;
  ratio: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  rss_mb: number | null;
  /** Where the baseline was offered the same fixed rate: its latency, measured the same way. */
  baseline_p50_ms?: number | null;
  baseline_p99_ms?: number | null;
  unit: string;
  load_generator: string;
  runs: RunRecord[];
}

export interface BenchResults {
  generated_at: string;
  duration_s: number;
  runs: number;
  window_s: number;
  warmup_s: number;
  goals: { acquire_spread_ratio: number; acquire_hot_ratio: number; p99_ms: number; rss_mb: number };
  machine: Record<string, unknown>;
  service: Record<string, unknown>;
  scenarios: ScenarioResult[];
  plan: Record<string, unknown>;
  profiles: Record<string, ProfileSummary>;
}

interface Goal {
  scenario: string;
  text: string;
  met: boolean;
  shortfall: string;
}

function goalsOf(results: BenchResults): Goal[] {
  const get = (name: string) => results.scenarios.find((s) => s.name === name)!;
  const goals: Goal[] = [];
  const ratioGoal = (name: string, wanted: number) => {
    const s = get(name);
    const target = (s.baseline_per_s ?? 0) * wanted;
    const met = (s.ratio ?? 0) >= wanted;
    goals.push({
      scenario: name,
      text: `throughput ≥ ${wanted} × pgbench (${round(target)}/s)`,
      met,
      shortfall: met
        ? `${s.ratio} × pgbench`
        : `${s.ratio} × pgbench: ${s.cls_per_s}/s, ${round(target - (s.cls_per_s ?? 0))}/s short of ${round(target)}/s (${round((100 * (s.cls_per_s ?? 0)) / Math.max(1, target))}% of the goal)`,
    });
  };
  ratioGoal("acquire-spread", results.goals.acquire_spread_ratio);
  ratioGoal("acquire-hot", results.goals.acquire_hot_ratio);
  const latency = get("latency-at-half-spread");
  const p99Met = (latency.p99_ms ?? Infinity) <= results.goals.p99_ms;
  goals.push({
    scenario: latency.name,
    text: `p99 ≤ ${results.goals.p99_ms} ms at half the acquire-spread maximum`,
    met: p99Met,
    shortfall: p99Met ? `p99 ${latency.p99_ms} ms` : `p99 ${latency.p99_ms} ms, ${round((latency.p99_ms ?? 0) - results.goals.p99_ms)} ms over`,
  });
  const rss = get("service-peak-rss");
  const rssMet = (rss.rss_mb ?? Infinity) <= results.goals.rss_mb;
  goals.push({
    scenario: rss.name,
    text: `peak RSS ≤ ${results.goals.rss_mb} MB under load`,
    met: rssMet,
    shortfall: rssMet ? `${rss.rss_mb} MB` : `${rss.rss_mb} MB, ${round((rss.rss_mb ?? 0) - results.goals.rss_mb)} MB over`,
  });
  return goals;
}

const fmt = (value: number | null | undefined, suffix = "") => (value === null || value === undefined || Number.isNaN(value) ? "–" : `${value}${suffix}`);

function medianCpu(runs: RunRecord[], key: "cpu_cls" | "cpu_baseline"): CpuShare | null {
  const shares = runs.map((r) => r[key]).filter((c): c is CpuShare => c !== null);
  if (shares.length === 0) return null;
  const m = (pick: (c: CpuShare) => number | null) => {
    const values = shares.map(pick).filter((v): v is number => v !== null);
    return values.length === 0 ? null : round(median(values));
  };
  return {
    service_pct: m((c) => c.service_pct),
    service_main_thread_pct: m((c) => c.service_main_thread_pct ?? null),
    postgres_pct: m((c) => c.postgres_pct) ?? 0,
    redis_pct: m((c) => c.redis_pct) ?? 0,
    loadgen_pct: m((c) => c.loadgen_pct),
    machine_busy_pct: m((c) => c.machine_busy_pct) ?? 0,
    kernel_irq_pct: m((c) => c.kernel_irq_pct ?? null) ?? 0,
    other_pct: m((c) => c.other_pct) ?? 0,
  };
}

/** CPU milliseconds per call (per transaction for pgbench) by process group, from the medians. */
interface PerCall {
  service: number | null;
  postgres: number;
  redis: number;
  loadgen: number | null;
  kernel: number;
  total: number;
}

function perCall(cpu: CpuShare | null, rate: number | null): PerCall | null {
  if (!cpu || !rate) return null;
  // pct is percent of one core: pct / 100 cores × 1000 ms per second / calls per second.
  const ms = (pct: number | null) => (pct === null ? null : round((pct * 10) / rate, 3));
  const parts = { service: ms(cpu.service_pct), postgres: ms(cpu.postgres_pct)!, redis: ms(cpu.redis_pct)!, loadgen: ms(cpu.loadgen_pct), kernel: ms(cpu.kernel_irq_pct ?? 0)! };
  return { ...parts, total: round((parts.service ?? 0) + parts.postgres + parts.redis + (parts.loadgen ?? 0) + parts.kernel, 3) };
}

/** What the CPU figures say bounds a CLS measurement. */
function boundOf(cpu: CpuShare | null, cores: number, rate: number | null): string {
  if (!cpu) return "";
  const parts: string[] = [];
  const cost = perCall(cpu, rate);
  if (cost) {
    parts.push(
      `each call costs ${cost.total} ms of CPU across the machine (service ${fmt(cost.service)}, Postgres ${cost.postgres}, Redis ${cost.redis}, load generator ${fmt(cost.loadgen)}, kernel networking ${cost.kernel}), so ${cores} cores with nothing else running cap it near ${round((cores * 1000) / cost.total, 0)}/s`,
    );
  }
  const main = cpu.service_main_thread_pct ?? null;
  if (main !== null && main >= 85) parts.push(`the service's event loop is saturated: its main thread, which runs all of its JavaScript, was busy ${main}% of the time (${cpu.service_pct}% of a core for the whole process, crypto thread pool included)`);
  if (cpu.machine_busy_pct >= 90) {
    parts.push(
      `the machine is saturated (${cpu.machine_busy_pct}% of ${cores} cores: service ${fmt(cpu.service_pct)}%, Postgres ${cpu.postgres_pct}%, load generator ${fmt(cpu.loadgen_pct)}%, Redis ${cpu.redis_pct}%, other ${cpu.other_pct}% of a core)`,
    );
  }
  const share = cost && rate ? rate / ((cores * 1000) / cost.total) : 0;
  if (parts.length === (cost ? 1 : 0)) {
    parts.push(
      share >= 0.75
        ? `it runs at ${round(100 * share, 0)}% of that ceiling with the machine ${cpu.machine_busy_pct}% busy: CPU-bound, the rest going to scheduling between ~25 busy processes on ${cores} cores (the service's main thread alone is ${fmt(main)}% busy)`
        : `neither the service's main thread (${fmt(main)}% busy) nor the machine (${cpu.machine_busy_pct}% busy) is saturated: the wait is elsewhere (row lock, commit, round trips)`,
    );
  }
  return parts.join("; ");
}

function profileSection(name: string, profile: ProfileSummary): string {
  const lines = [
    `### ${name}`,
    "",
    `Profile of the ${round(profile.wallMs / 1000)} s under load (start-up and shutdown left out); the service's main thread was busy ${profile.busyPct}% of it. Shares below are of busy time.`,
    "",
    "| self time by owner | % |",
    "|---|---:|",
    ...profile.owners.slice(0, 10).map((o) => `| ${o.owner} | ${o.pct} |`),
    "",
    "| top frames, self time | owner | % |",
    "|---|---|---:|",
    ...profile.topSelf.slice(0, 10).map((f) => `| \`${f.frame}\` | ${f.owner} | ${f.pct} |`),
    "",
    "| top frames, inclusive (on the stack) | owner | % |",
    "|---|---|---:|",
    ...profile.topInclusive.slice(0, 12).map((f) => `| \`${f.frame}\` | ${f.owner} | ${f.pct} |`),
    "",
  ];
  return lines.join("\n");
}

export function renderMarkdown(results: BenchResults, analysis: string | undefined): string {
  const goals = goalsOf(results);
  const cores = Number(results.machine.cpus ?? 0);
  const byName = (name: string) => results.scenarios.find((s) => s.name === name)!;
  const goalFor = (name: string) => goals.find((g) => g.scenario === name);
  const out: string[] = [];
  out.push("# Allocation benchmark: latest results", "");
  out.push(
    `Generated ${results.generated_at} by \`npm run bench\` (${results.duration_s} s). Medians of ${results.runs} runs; each run measures ${results.window_s} s after ${results.warmup_s} s of warm-up. ` +
      `Machine: ${cores} × ${String(results.machine.cpu_model)}, ${String(results.machine.memory_gb)} GB, Node ${String(results.machine.node)}, ${String(results.machine.postgres)}, Redis ${String(results.machine.redis)}. ` +
      `Other work kept the machine ${String(results.machine.background_busy_pct_before)}% busy just before the run (the figures are only as quiet as the machine was).`,
    "",
  );
  out.push("## Results", "");
  out.push("| scenario | CLS | pgbench baseline | ratio | p50 ms | p99 ms | peak RSS MB | goal | met |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---|---|");
  for (const s of results.scenarios) {
    const goal = goalFor(s.name);
    out.push(
      `| ${s.name} | ${fmt(s.cls_per_s)} | ${fmt(s.baseline_per_s)} | ${fmt(s.ratio)} | ${fmt(s.p50_ms)} | ${fmt(s.p99_ms)} | ${fmt(s.rss_mb)} | ${goal?.text ?? "– (reported)"} | ${goal ? (goal.met ? "yes" : "**no**") : "–"} |`,
    );
  }
  out.push("");
  const daily = byName("daily-check-batch");
  const dailyExtra = (key: string) => round(median(daily.runs.map((r) => Number(r.extra?.[key] ?? Number.NaN))));
  const latencyExtra = (key: string) => fmt(round(median(byName("latency-at-half-spread").runs.map((r) => Number(r.extra?.[key] ?? Number.NaN)))));
  out.push(
    `Units: acquire rows are successful AcquireLicence calls per second (each a new licence with a signed lease); pgbench rows are transactions per second. ` +
      `daily-check-batch is encoder checks per second: ${dailyExtra("batchesPerSecond")} batches/s of ${String(results.plan.encodersPerBatch)} encoders, ` +
      `${dailyExtra("leasesPerSecond")} leases signed per second (${String(results.plan.leases_per_batch)} per batch), ${dailyExtra("batchMeanMs")} ms per batch. ` +
      `latency-at-half-spread offers ${String(byName("latency-at-half-spread").runs[0]?.extra?.rate_per_s ?? "–")} calls/s open loop, latency measured from each call's scheduled start; ` +
      `pgbench offered the same rate (\`-R\`, same measure) answers with p50 ${latencyExtra("baseline_p50_ms")} ms and p99 ${latencyExtra("baseline_p99_ms")} ms ` +
      `(CLS, median over the runs: largest latency ${latencyExtra("max_ms")} ms, up to ${latencyExtra("max_in_flight")} calls in flight).`,
    "",
  );

  out.push("## Goals", "");
  for (const goal of goals) out.push(`- **${goal.scenario}**: ${goal.text}: ${goal.met ? "met" : "**not met**"} (${goal.shortfall}).`);
  out.push("");

  out.push("## Where the CPU went", "");
  out.push(
    "Percent of one core over the measured window (medians); machine busy is percent of all cores. The service's main thread runs all of its JavaScript (the event loop); the rest of the process is the libuv pool (crypto) and V8's helpers. " +
      "\"Kernel irq\" is interrupt and softirq time (the loopback networking between the processes, charged to none of them); \"other\" is busy CPU left unaccounted (the bench's own orchestrator, other work on the machine).",
    "",
  );
  out.push("| measurement | service (main thread) | Postgres | Redis | load generator | kernel irq | other | machine busy |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of results.scenarios) {
    const cls = medianCpu(s.runs, "cpu_cls");
    if (cls) out.push(`| ${s.name} (CLS) | ${fmt(cls.service_pct)} (${fmt(cls.service_main_thread_pct)}) | ${cls.postgres_pct} | ${cls.redis_pct} | ${fmt(cls.loadgen_pct)} | ${cls.kernel_irq_pct} | ${cls.other_pct} | ${cls.machine_busy_pct} |`);
    const base = medianCpu(s.runs, "cpu_baseline");
    if (base) out.push(`| ${s.name} (pgbench) | – | ${base.postgres_pct} | ${base.redis_pct} | ${fmt(base.loadgen_pct)} | ${base.kernel_irq_pct} | ${base.other_pct} | ${base.machine_busy_pct} |`);
  }
  out.push("");

  out.push("CPU per call, in ms (per transaction for pgbench; per encoder check for daily-check-batch), from the medians above: what one call costs each process, whatever else runs on the machine.", "");
  out.push("| measurement | service | Postgres | Redis | load generator | kernel irq | total | ceiling on " + cores + " cores |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of results.scenarios) {
    const cls = perCall(medianCpu(s.runs, "cpu_cls"), s.cls_per_s);
    if (cls) out.push(`| ${s.name} (CLS) | ${fmt(cls.service)} | ${cls.postgres} | ${cls.redis} | ${fmt(cls.loadgen)} | ${cls.kernel} | ${cls.total} | ${round((cores * 1000) / cls.total, 0)}/s |`);
    const base = perCall(medianCpu(s.runs, "cpu_baseline"), s.baseline_per_s);
    if (base) out.push(`| ${s.name} (pgbench) | – | ${base.postgres} | ${base.redis} | ${fmt(base.loadgen)} | ${base.kernel} | ${base.total} | ${round((cores * 1000) / base.total, 0)}/s |`);
  }
  out.push("");

  const unmet = goals.filter((g) => !g.met);
  out.push("## What bounds the goals not met", "");
  if (unmet.length === 0) out.push("Every goal is met.", "");
  for (const goal of unmet) {
    const s = goal.scenario === "latency-at-half-spread" ? byName("latency-at-half-spread") : byName(goal.scenario);
    const latencyBound = () => {
      const cpu = medianCpu(s.runs, "cpu_cls");
      return (
        `pgbench offered the same rate answers with p99 ${fmt(s.baseline_p99_ms)} ms, so the tail is not the commit path; ` +
        `CLS keeps the machine ${fmt(cpu?.machine_busy_pct)}% busy at this rate (the service's main thread ${fmt(cpu?.service_main_thread_pct)}%) and an uncontended call makes 5 Postgres and 3 Redis round trips (pre-read and revocation check shared with calls arriving together), so bursts queue for CPU (see the analysis below)`
      );
    };
    const bound =
      goal.scenario === "service-peak-rss"
        ? "the peak is the V8 heap's high-water mark, not live data (see the analysis below)"
        : goal.scenario === "latency-at-half-spread"
          ? latencyBound()
          : boundOf(medianCpu(s.runs, "cpu_cls"), cores, s.cls_per_s);
    out.push(`- **${goal.scenario}** (${goal.shortfall}): ${bound}.`);
  }
  out.push("");
  if (analysis) out.push(analysis.trim(), "");

  if (Object.keys(results.profiles).length > 0) {
    out.push("## CPU profiles of the service", "");
    out.push(
      "One extra run per scenario with the service started under `node --cpu-prof` (profiles in `node_modules/.cache/cls-bench/profiles/`; open them in Chrome DevTools or speedscope for a flame graph). " +
        "Frames inside the bundle are attributed to their source file (`cls <package>/<file>`); `node:*` owners are Node's own JavaScript (HTTP/2, TLS, streams); `(program)` is native work V8 does not attribute (syscalls, OpenSSL, libuv).",
      "",
    );
    for (const [name, profile] of Object.entries(results.profiles)) out.push(profileSection(name, profile));
  }

  out.push("## How it is measured", "");
  out.push(
    `- **Service**: ${String(results.service.process)}; Postgres with DATABASE_MAX_CONNECTIONS=${String(results.service.database_max_connections)} (the chart's value), Redis at ${String(results.service.redis)} (locks, fences, revocation list), TLS on the public port, LOG_LEVEL=${String(results.service.log_level)}. One replica on this machine; everything else (Postgres, Redis, load generators) shares the same ${cores} cores.`,
    "- **Seeding**: vendor data through the internal gRPC AllocationAdminService (ApplyEncoderModel, ApplyEntitlement for every pool, BindServer for every server); encoders through the public RegisterEncoder; the daily-check servers' cameras through AcquireLicence. Access tokens are EdDSA JWTs from a key the benchmark owns, verified by the service as server-identity's.",
    `- **acquire-spread**: ${String(results.plan.spreadPools)} pools, one server (with one v9 encoder) per pool; ${String(results.plan.concurrency)} calls in flight, each naming a random server and a camera never used before, so every call takes a new licence from a random pool (the idempotent path is not exercised). Load: ${byName("acquire-spread").load_generator}.`,
    `- **acquire-hot**: one pool of 1,000,000 licences shared by ${String(results.plan.hotServers)} servers, one per caller, ${String(results.plan.concurrency)} in flight: the coalescing case.`,
    `- **daily-check-batch**: ${String(results.plan.dailyServers)} servers, each with ${String(results.plan.encodersPerBatch)} encoders of ${String(results.plan.camerasPerEncoder)} licensed cameras, each sending CheckEncoders for all of its encoders again and again (every lease renewed and signed). Load: ${daily.load_generator}. One batch is decoded and its leases verified before the timed runs.`,
    "- **latency-at-half-spread**: the acquire-spread mix offered at a fixed rate of half the acquire-spread median (open loop: calls start on schedule whatever the answers do; latency counts from the scheduled start).",
    "- **peak RSS**: VmHWM of the service process from /proc, reset (clear_refs) before each scenario; the largest over every run.",
    `- **Baseline**: \`pgbench -n -M prepared -c ${String(results.plan.concurrency)} -j ${String(results.plan.pgbench_threads)} -P 1\` in a scratch database of its own, after the same warm-up, with the script \`WITH u AS (UPDATE pool_usage SET used = used + 1 WHERE pool_id = :p AND licence_type = 't' AND used < capacity RETURNING pool_id) INSERT INTO allocations (pool_id, licence_type, camera_id, acquired_at) SELECT pool_id, 't', :c, now() FROM u\` (:p random over ${String(results.plan.spreadPools)} pools for spread, one pool for hot). Each CLS measurement is followed by its baseline, run after run.`,
    "- Every call of every timed run must succeed (the bench fails otherwise), and 200 leases per acquire run are decoded and their signatures verified against the service's published key.",
    "",
  );

  out.push("## Every run", "");
  out.push("| scenario | run | CLS | pgbench | p50 ms | p99 ms | peak RSS MB | service CPU % | Postgres CPU % (CLS / pgbench) |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const s of results.scenarios) {
    s.runs.forEach((r, i) => {
      out.push(
        `| ${s.name} | ${i + 1} | ${fmt(r.cls_per_s)} | ${fmt(r.baseline_per_s)} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.rss_mb)} | ${fmt(r.cpu_cls?.service_pct)} | ${fmt(r.cpu_cls?.postgres_pct)} / ${fmt(r.cpu_baseline?.postgres_pct)} |`,
      );
    });
  }
  out.push("");
  return out.join("\n");
}

/** Writes latest.json and latest.md into `dir`; returns their paths. */
export function writeReport(results: BenchResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, "latest.json");
  const mdPath = join(dir, "latest.md");
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  const analysisPath = join(dir, "..", "analysis.md");
  const analysis = existsSync(analysisPath) ? readFileSync(analysisPath, "utf8") : undefined;
  writeFileSync(mdPath, renderMarkdown(results, analysis));
  return [jsonPath, mdPath];
}

/** `tsx test/bench/report.ts`: re-renders latest.md from latest.json (after editing analysis.md). */
if (process.argv[1]?.endsWith("report.ts")) {
  const dir = join(import.meta.dirname, "results");
  const results = JSON.parse(readFileSync(join(dir, "latest.json"), "utf8")) as BenchResults;
  writeReport(results, dir);
  console.log(`re-rendered ${join(dir, "latest.md")}`);
}
