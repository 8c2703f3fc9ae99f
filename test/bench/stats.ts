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

/** CPU seconds (user + system) a process (or, with `thread`, one of its threads) has used so far, or 0 once it has gone. */
export function processCpuSeconds(pid: number, thread?: number): number {
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
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

/** Busy, interrupt (irq + softirq: in-kernel networking) and total CPU seconds of the whole machine, from /proc/stat. */
export function machineCpuSeconds(): { busy: number; interrupts: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const total = values.reduce((sum, value) => sum + value, 0);
  const interrupts = (values[5] ?? 0) + (values[6] ?? 0);
  return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, interrupts: interrupts / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
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
  /** The allocation service process, all threads (100 = one full core). */
  service_pct: number | null;
  /** The service's main thread alone: its JavaScript event loop, saturated near 100. */
  service_main_thread_pct: number | null;
  /** Every Postgres process on the machine (other databases' work included). */
  postgres_pct: number;
  redis_pct: number;
  /** The load generator (Node process, h2load or pgbench). */
  loadgen_pct: number | null;
  /** Whole machine busy, percent of all cores. */
  machine_busy_pct: number;
  /** Interrupt and softirq time (the kernel's loopback networking, charged to no process), percent of one core. */
  kernel_irq_pct: number;
  /** Busy CPU not accounted to the groups above (other work on the machine), percent of one core. */
  other_pct: number;
}

/** Follows the CPU of a changing set of processes: first and last value seen per process. */
class CpuTracker {
  readonly #first = new Map<number, number>();
  readonly #last = new Map<number, number>();
  #pids: number[] = [];
  #pidsAt = 0;
  constructor(
    private readonly pids: () => number[],
    private readonly mainThreadOnly = false,
  ) {
    this.sample();
  }
  sample(): void {
    // Finding processes means reading all of /proc: do it every few seconds only, so the
    // measuring costs the machine next to nothing.
    if (performance.now() - this.#pidsAt > 3_000) {
      this.#pids = this.pids();
      this.#pidsAt = performance.now();
    }
    for (const pid of this.#pids) {
      const seconds = processCpuSeconds(pid, this.mainThreadOnly ? pid : undefined);
      if (seconds <= 0 && !this.#first.has(pid)) continue;
      if (!this.#first.has(pid)) this.#first.set(pid, seconds);
      // A process that has exited reads 0: keep its last real value.
      if (seconds > 0) this.#last.set(pid, seconds);
    }
  }
  /** CPU seconds used between the first and last samples (processes that exited count until then). */
  seconds(): number {
    let total = 0;
    for (const [pid, first] of this.#first) total += Math.max(0, (this.#last.get(pid) ?? first) - first);
    return total;
  }
  get seen(): number {
    return this.#first.size;
  }
}

/** Starts measuring CPU by group; call the returned function at the end of the window. */
export function startCpuWindow(servicePid: number | null, loadgenPids: () => number[]): () => CpuShare {
  const startWall = performance.now();
  const startMachine = machineCpuSeconds();
  const groups = {
    service: new CpuTracker(() => (servicePid === null ? [] : [servicePid])),
    serviceMain: new CpuTracker(() => (servicePid === null ? [] : [servicePid]), true),
    postgres: new CpuTracker(() => pidsNamed("postgres")),
    redis: new CpuTracker(() => pidsNamed("redis-server")),
    loadgen: new CpuTracker(loadgenPids),
  };
  const sampleAll = () => {
    for (const group of Object.values(groups)) group.sample();
  };
  const timer = setInterval(sampleAll, 1_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    sampleAll();
    const wall = (performance.now() - startWall) / 1000;
    const machine = machineCpuSeconds();
    const cores = (machine.total - startMachine.total) / wall;
    const pct = (seconds: number) => round((100 * seconds) / wall);
    const servicePct = servicePid === null ? null : pct(groups.service.seconds());
    const postgresPct = pct(groups.postgres.seconds());
    const redisPct = pct(groups.redis.seconds());
    const loadgenPct = groups.loadgen.seen === 0 ? null : pct(groups.loadgen.seconds());
    const busyCorePct = pct(machine.busy - startMachine.busy);
    const irqPct = pct(machine.interrupts - startMachine.interrupts);
    const known = (servicePct ?? 0) + postgresPct + redisPct + (loadgenPct ?? 0) + irqPct;
    return {
      service_pct: servicePct,
      service_main_thread_pct: servicePid === null ? null : pct(groups.serviceMain.seconds()),
      postgres_pct: postgresPct,
      redis_pct: redisPct,
      loadgen_pct: loadgenPct,
      machine_busy_pct: round(busyCorePct / Math.max(1, Math.round(cores))),
      kernel_irq_pct: irqPct,
      other_pct: round(Math.max(0, busyCorePct - known)),
    };
  };
}

/** Busy share of the whole machine over `ms`, percent of all cores. */
export async function machineBusyPct(ms: number): Promise<number> {
  const before = machineCpuSeconds();
  await new Promise((done) => setTimeout(done, ms));
  const after = machineCpuSeconds();
  return round((100 * (after.busy - before.busy)) / Math.max(0.001, after.total - before.total));
}

/**
 * Waits until the machine is quiet (busy below `maxBusyPct` over one second), for at most
 * `timeoutMs`; returns the last busy share seen. The benchmark shares its cores with
 * whatever else runs here, and a busy neighbour halves what the service can do.
 */
export async function waitForQuiet(maxBusyPct: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const busy = await machineBusyPct(1_000);
    if (busy <= maxBusyPct || Date.now() >= deadline) return busy;
  }
}
