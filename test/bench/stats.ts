/** Small numeric and /proc helpers shared by the benchmark's parts. */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The q-quantile (0..1) of already sorted values, nearest-rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, or 0 once it has gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

function commandOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** The ids of the processes whose command name is `name` (e.g. every Postgres backend). */
export function pidsNamed(name: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry) && commandOf(entry) === name)
    .map(Number);
}

/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.reduce((sum, value) => sum + value, 0);
  return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
}

/** Peak resident set size (VmHWM) of a process, in MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** Current resident set size (VmRSS) of a process, in MB. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/**
 * Resets a process's peak RSS to its current RSS (Linux: `5` into clear_refs), so that each
 * scenario's peak is its own. Returns false where the kernel does not allow it.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Where the CPU went while something ran: percent of one core per group, and the machine. */
export interface CpuShare {
  /** The allocation service process (100 = one full core). */
  service_pct: number | null;
  /** Every Postgres process on the machine (other databases' work included). */
  postgres_pct: number;
  redis_pct: number;
  /** The load generator (Node process, h2load or pgbench). */
  loadgen_pct: number | null;
  /** Whole machine busy, percent of all cores. */
  machine_busy_pct: number;
  /** Busy CPU not accounted to the groups above (other work on the machine), percent of one core. */
  other_pct: number;
}

/** Starts measuring CPU by group; call the returned function at the end of the window. */
export function startCpuWindow(servicePid: number | null, loadgenPids: () => number[]): () => CpuShare {
  const postgres = () => pidsNamed("postgres").reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const redis = () => pidsNamed("redis-server").reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const service = () => (servicePid === null ? 0 : processCpuSeconds(servicePid));
  const startWall = performance.now();
  const start = { service: service(), postgres: postgres(), redis: redis(), machine: machineCpuSeconds() };
  // First and last CPU seen per load-generator process: one that exits keeps its last sample.
  const loadgenStart = new Map<number, number>();
  const loadgenLast = new Map<number, number>();
  const noteLoadgen = () => {
    for (const pid of loadgenPids()) {
      const seconds = processCpuSeconds(pid);
      if (seconds === 0) continue;
      if (!loadgenStart.has(pid)) loadgenStart.set(pid, seconds);
      loadgenLast.set(pid, seconds);
    }
  };
  noteLoadgen();
  const timer = setInterval(noteLoadgen, 200);
  timer.unref();
  return () => {
    clearInterval(timer);
    noteLoadgen();
    const wall = (performance.now() - startWall) / 1000;
    const machine = machineCpuSeconds();
    const cores = (machine.total - start.machine.total) / wall;
    const pct = (seconds: number) => round((100 * seconds) / wall);
    const servicePct = servicePid === null ? null : pct(service() - start.service);
    const postgresPct = pct(postgres() - start.postgres);
    const redisPct = pct(redis() - start.redis);
    let loadgen = 0;
    for (const [pid, before] of loadgenStart) loadgen += Math.max(0, (loadgenLast.get(pid) ?? before) - before);
    const loadgenPct = loadgenStart.size === 0 ? null : pct(loadgen);
    const busyCorePct = pct(machine.busy - start.machine.busy);
    const known = (servicePct ?? 0) + postgresPct + redisPct + (loadgenPct ?? 0);
    return {
      service_pct: servicePct,
      postgres_pct: postgresPct,
      redis_pct: redisPct,
      loadgen_pct: loadgenPct,
      machine_busy_pct: round(busyCorePct / Math.max(1, Math.round(cores))),
      other_pct: round(Math.max(0, busyCorePct - known)),
    };
  };
}
