import type { FaultReport } from "./harness.js";
import { LOG_PATTERNS, type ReplicaSet } from "./replicas.js";

/** Prints one line of figures for a fault run (requests, grants, refusals, retries) and, on a breach, the replicas' last words. */
export function report(fault: string, result: FaultReport, replicas: ReplicaSet, extra: Record<string, unknown> = {}): void {
  const logs = Object.fromEntries(Object.entries(LOG_PATTERNS).map(([name, pattern]) => [name, replicas.count(pattern)]));
  const exits = replicas.exits().map((e) => `${e.replica}:${e.signal ?? e.code}${e.bySuite ? "" : "(own)"}`);
  console.log(`[faults] ${fault}: ${JSON.stringify({ ...result.figures, ...result.counters, exits, logs, ...extra })}`);
  const crash = replicas.exits().find((e) => !e.bySuite && e.code !== null);
  if (crash) console.log(`[faults] ${fault}: replica ${crash.replica} exited with code ${crash.code}; its last words:\n${crash.lastWords}`);
  if (result.violations.length > 0) console.log(`[faults] ${fault}: replica output\n${replicas.tails()}`);
}
