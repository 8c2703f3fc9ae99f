import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@cls/proto";
import { spawnChild, waitUntil, type Child, type Exit } from "./processes.js";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
/** A replica that dies this many times in a row before answering health is broken, not faulted. */
const MAX_FAILED_STARTS = 3;

/** Log lines worth counting across every incarnation of a replica. */
export const LOG_PATTERNS = {
  staleLock: /pool lock lost before release/,
  lockStoreDown: /lock store unavailable/,
  internalError: /"msg":"internal error"/,
} as const;

export interface ReplicaExit extends Exit {
  replica: number;
  /** The suite killed it on purpose (a fault), as opposed to a crash of its own. */
  bySuite: boolean;
  /** The last thing it printed. */
  lastWords: string;
}

/** One allocation replica, a separate OS process, restarted by its supervisor whenever it exits (as Kubernetes would). */
export interface Replica {
  readonly index: number;
  readonly publicUrl: string;
  readonly internalUrl: string;
  /** Its Prometheus scrape endpoint (counters restart from zero with the process). */
  readonly metricsUrl: string;
  /** Started and answering health since its latest (re)start. */
  up(): boolean;
  current(): Child | undefined;
  starts(): number;
}

export interface ReplicaSet {
  readonly replicas: readonly Replica[];
  /** SIGKILLs a replica; its supervisor starts it again. */
  kill(index: number): Promise<void>;
  freeze(index: number): void;
  thaw(index: number): void;
  waitAllUp(timeoutMs?: number): Promise<void>;
  exits(): readonly ReplicaExit[];
  /** Why a replica could not be kept running, if so. */
  broken(): string | undefined;
  /** Matching log lines, summed over every incarnation of every replica. */
  count(pattern: RegExp): number;
  /** The last output of each replica, for a failure message. */
  tails(): string;
  close(): Promise<void>;
}

export interface ReplicaOptions {
  count: number;
  ports: { public: number; internal: number; metrics: number }[];
  env: Record<string, string>;
  envFor?: (index: number) => Record<string, string>;
  /** CA (the self-signed certificate) for the health probe. */
  ca: string;
}

export async function startReplicas(options: ReplicaOptions): Promise<ReplicaSet> {
  let closing = false;
  const exits: ReplicaExit[] = [];
  let broken: string | undefined;
  const patterns = Object.values(LOG_PATTERNS);

  const replicas = Array.from({ length: options.count }, (_, index) => {
    const ports = options.ports[index]!;
    const publicUrl = `https://localhost:${ports.public}`;
    const health = createClient(Health, createConnectTransport({ baseUrl: publicUrl, httpVersion: "2", nodeOptions: { ca: options.ca } }));
    const children: Child[] = [];
    let up = false;
    let failedStarts = 0;
    let killedBySuite = false;
    let ready: Promise<void> = Promise.resolve();

    async function probe(child: Child): Promise<void> {
      await waitUntil(`replica ${index} to answer health`, async () => {
        if (!child.alive() || closing) return true;
        try {
          const res = await health.check({ service: "" }, { timeoutMs: 1_000 });
          return res.status === HealthCheckResponse_ServingStatus.SERVING;
        } catch {
          return false;
        }
      }, 90_000, 100);
      if (child.alive() && !closing) {
        up = true;
        failedStarts = 0;
      }
    }

    function start(): void {
      const child = spawnChild(`allocation-${index}`, process.execPath, ["--import", "tsx", "services/allocation/src/main.ts", "serve"], {
        cwd: REPO_ROOT,
        env: {
          ...(process.env as Record<string, string>),
          ...options.env,
          ...(options.envFor?.(index) ?? {}),
          PUBLIC_PORT: String(ports.public),
          INTERNAL_PORT: String(ports.internal),
          METRICS_PORT: String(ports.metrics),
        },
        countLines: patterns,
      });
      children.push(child);
      up = false;
      ready = probe(child);
      void child.exited.then(async (exit) => {
        const wasUp = up;
        up = false;
        if (closing) return;
        exits.push({ ...exit, replica: index, bySuite: killedBySuite, lastWords: child.tail().slice(-3_000) });
        if (!wasUp && !killedBySuite && ++failedStarts >= MAX_FAILED_STARTS) {
          broken = `replica ${index} exited ${failedStarts} times in a row before answering health:\n${child.tail().slice(-4_000)}`;
          return;
        }
        killedBySuite = false;
        await sleep(100);
        if (closing) return;
        try {
          start();
        } catch (error) {
          broken = `replica ${index} could not be restarted: ${(error as Error).message}`;
        }
      });
    }

    start();
    return {
      index,
      publicUrl,
      internalUrl: `http://127.0.0.1:${ports.internal}`,
      metricsUrl: `http://127.0.0.1:${ports.metrics}/metrics`,
      up: () => up,
      current: () => children.at(-1),
      starts: () => children.length,
      children,
      markKilled: () => (killedBySuite = true),
      ready: () => ready,
    };
  });

  const set: ReplicaSet = {
    replicas,
    async kill(index) {
      const replica = replicas[index]!;
      const child = replica.current();
      if (!child?.alive()) return;
      replica.markKilled();
      await child.stop("SIGKILL");
    },
    freeze(index) {
      replicas[index]!.current()?.signal("SIGSTOP");
    },
    thaw(index) {
      replicas[index]!.current()?.signal("SIGCONT");
    },
    async waitAllUp(timeoutMs = 120_000) {
      await waitUntil("every replica up", () => {
        if (broken) throw new Error(broken);
        return replicas.every((r) => r.up());
      }, timeoutMs, 100).catch((error: Error) => {
        throw new Error(`${error.message}\n${set.tails()}`);
      });
    },
    exits: () => exits,
    count(pattern) {
      return replicas.reduce((sum, r) => sum + r.children.reduce((n, child) => n + child.count(pattern), 0), 0);
    },
    tails() {
      return replicas.map((r) => `--- replica ${r.index} (started ${r.starts()} times)\n${r.current()?.tail().slice(-4_000) ?? ""}`).join("\n");
    },
    broken: () => broken,
    async close() {
      closing = true;
      await Promise.all(replicas.map((r) => r.current()?.stop("SIGKILL")));
    },
  };
  return set;
}
