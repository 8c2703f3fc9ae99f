/**
 * The baseline: pgbench on this machine running the minimal SQL shape of an allocation —
 * one conditional UPDATE of a pool's usage row feeding one INSERT of the allocation — with
 * prepared statements, at the same concurrency as the CLS scenario, on tables of its own in
 * a scratch database, with the same spread of pools.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { quantile, round } from "./stats.js";
import { WORK_DIR } from "./service.js";

export const ALLOCATION_SQL =
  "WITH u AS (UPDATE pool_usage SET used = used + 1 WHERE pool_id = :p AND licence_type = 't' AND used < capacity RETURNING pool_id) " +
  "INSERT INTO allocations (pool_id, licence_type, camera_id, acquired_at) SELECT pool_id, 't', :c, now() FROM u;";

const SCHEMA_SQL = `
create table pool_usage (
  pool_id integer not null,
  licence_type text not null,
  capacity integer not null,
  used integer not null default 0 check (used >= 0),
  primary key (pool_id, licence_type)
);
create table allocations (
  allocation_id bigserial primary key,
  pool_id integer not null,
  licence_type text not null,
  camera_id bigint not null,
  acquired_at timestamptz not null
);`;

export interface PgbenchResult {
  /** Transactions per second over the measured window (after warm-up), from pgbench's progress lines. */
  tps: number;
  /** pgbench's own figure for the whole run. */
  reportedTps: number;
  latencyAverageMs: number;
  failed: number;
  /** With a fixed rate: latency percentiles from pgbench's per-transaction log, from each transaction's scheduled start. */
  latencyMs?: { p50: number; p99: number; max: number };
}

export interface Baseline {
  databaseName: string;
  /** Pool 1..spreadPools for the spread script; pool 0 is the hot one. */
  run(
    script: "spread" | "hot",
    options: { clients: number; threads: number; warmupSeconds: number; seconds: number; ratePerSecond?: number },
    onStart?: (pid: number) => void,
  ): Promise<PgbenchResult>;
  drop(): Promise<void>;
}

/**
 * pgbench's per-transaction log (one file per thread): `client transaction latency_us script
 * epoch_s epoch_us [schedule_lag_us]`. Latency from the scheduled start is latency + lag, as
 * the CLS open-loop generator measures it. Transactions finished during warm-up are left out.
 */
function readLatencyLog(dir: string, prefix: string, warmupSeconds: number): { p50: number; p99: number; max: number } {
  const files = readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => path.startsWith(`${prefix}.`));
  const rows = files.flatMap((path) =>
    readFileSync(path, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(" ").map(Number)),
  );
  for (const path of files) rmSync(path, { force: true });
  if (rows.length === 0) throw new Error("pgbench wrote no latency log");
  const start = Math.min(...rows.map((r) => r[4]! + r[5]! / 1e6));
  const latencies = Float64Array.from(
    rows.filter((r) => r[4]! + r[5]! / 1e6 - start >= warmupSeconds).map((r) => (r[2]! + (r[6] ?? 0)) / 1000),
  ).sort();
  return { p50: round(quantile(latencies, 0.5), 2), p99: round(quantile(latencies, 0.99), 2), max: round(quantile(latencies, 1), 2) };
}

export async function createBaseline(adminUrl: string, spreadPools: number): Promise<Baseline> {
  const databaseName = `cls_bench_pgbench_${process.pid}_${Date.now().toString(36)}`;
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${databaseName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${databaseName}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(SCHEMA_SQL);
    await client.query("insert into pool_usage select g, 't', 1000000000, 0 from generate_series(0, $1::int) g", [spreadPools]);
    await client.query("vacuum analyze pool_usage");
  } finally {
    await client.end();
  }

  const dir = join(WORK_DIR, "pgbench");
  mkdirSync(dir, { recursive: true });
  const scripts = {
    spread: join(dir, "acquire-spread.sql"),
    hot: join(dir, "acquire-hot.sql"),
  };
  writeFileSync(scripts.spread, `\\set p random(1, ${spreadPools})\n\\set c random(1, 1000000000000)\n${ALLOCATION_SQL}\n`);
  writeFileSync(scripts.hot, `\\set p 0\n\\set c random(1, 1000000000000)\n${ALLOCATION_SQL}\n`);

  const env = {
    ...process.env,
    PGHOST: url.hostname,
    PGPORT: url.port || "5432",
    PGUSER: decodeURIComponent(url.username) || "postgres",
    ...(url.password ? { PGPASSWORD: decodeURIComponent(url.password) } : {}),
  };

  return {
    databaseName,
    run(script, options, onStart) {
      const logPrefix = join(dir, `latency-${Date.now()}`);
      const rateArgs = options.ratePerSecond ? ["-R", String(options.ratePerSecond), "-l", `--log-prefix=${logPrefix}`] : [];
      return new Promise((resolve, reject) => {
        const args = [
          ...rateArgs,
          "-n",
          "-M", "prepared",
          "-c", String(options.clients),
          "-j", String(options.threads),
          "-T", String(options.warmupSeconds + options.seconds),
          "-P", "1",
          "-f", scripts[script],
          databaseName,
        ];
        const child = spawn("pgbench", args, { env, stdio: ["ignore", "pipe", "pipe"] });
        if (child.pid) onStart?.(child.pid);
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.once("error", reject);
        child.once("exit", (code) => {
          if (code !== 0) return reject(new Error(`pgbench exited ${code}:\n${output}`));
          const progress = [...output.matchAll(/progress: ([\d.]+) s, ([\d.]+) tps/g)].map((m) => ({ at: Number(m[1]), tps: Number(m[2]) }));
          const measured = progress.filter((p) => p.at > options.warmupSeconds);
          const reported = /tps = ([\d.]+)/.exec(output);
          const latency = /latency average = ([\d.]+) ms/.exec(output);
          const failed = /number of failed transactions: (\d+)/.exec(output);
          if (!reported || measured.length === 0) return reject(new Error(`cannot read pgbench's output:\n${output}`));
          const latencyMs = options.ratePerSecond ? readLatencyLog(dir, logPrefix, options.warmupSeconds) : undefined;
          resolve({
            ...(latencyMs ? { latencyMs } : {}),
            tps: round(measured.reduce((sum, p) => sum + p.tps, 0) / measured.length),
            reportedTps: round(Number(reported[1])),
            latencyAverageMs: latency ? Number(latency[1]) : Number.NaN,
            failed: failed ? Number(failed[1]) : 0,
          });
        });
      });
    },
    async drop() {
      await admin(`drop database if exists ${databaseName} with (force)`);
    },
  };
}
