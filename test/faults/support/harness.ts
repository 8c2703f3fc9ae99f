import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrateAllocation } from "@cls/allocation";
import { openDatabase } from "@cls/db";
import { createTestDatabase, type TestDatabase } from "../../support/database.js";
import { checkHistory, type CheckReport } from "./checker.js";
import { startClients, type ClientOptions, type ClientRun } from "./clients.js";
import { writeReplicaCredentials } from "./credentials.js";
import { readDatabaseState } from "./database-state.js";
import type { Attempt } from "./history.js";
import { startNotificationSink, type NotificationSink } from "./notification-sink.js";
import { freePort, freePorts } from "./ports.js";
import { startPrivatePostgres, type PrivatePostgres } from "./private-postgres.js";
import { startPrivateRedis, type PrivateRedis } from "./private-redis.js";
import { allowChildren, killAllChildren } from "./processes.js";
import { startReplicas, type ReplicaSet } from "./replicas.js";
import { scrapeCounter } from "./metrics.js";
import { startSampler, type SampleReport } from "./sampler.js";
import { seedFleet, type Fleet, type FleetShape } from "./seed.js";

export const REPLICAS = 3;
/** Bounds (not goals) for a set-up and for a run, generous for a loaded 2-core machine running two suites at once. */
export const SETUP_MS = 180_000;
export const RUN_MS = 180_000;
export const CLIENTS = 32;
const DEFAULT_SHAPE: FleetShape = { capacities: [3, 4, 5, 6, 8], serversPerPool: 2, camerasPerServer: 6 };

export interface HarnessOptions {
  /** shared: a fresh database on the machine's Postgres; private: a cluster of the suite's own, which may be restarted. */
  postgres: "shared" | "private";
  /** private: a redis-server of the suite's own, which may be restarted; down: REDIS_URL names a closed port. */
  redis: "private" | "down";
  /** Extra environment per replica (fault injection). */
  envFor?: (index: number) => Record<string, string>;
  shape?: FleetShape;
}

/** Everything one fault run needs: replicas, storage, a seeded fleet, clients and the checker. */
export interface FaultHarness {
  readonly replicas: ReplicaSet;
  readonly redis: PrivateRedis | undefined;
  readonly postgres: PrivatePostgres | undefined;
  readonly databaseUrl: string;
  readonly fleet: Fleet;
  /** Starts the clients and the sampler. */
  run(options?: Partial<ClientOptions>): FaultRun;
  close(): Promise<void>;
}

export interface FaultRun {
  readonly clients: ClientRun;
  /** Stops the clients, then checks their history and the tables. */
  finish(options?: { landsLate?: (attempt: Attempt) => boolean }): Promise<FaultReport>;
}

/** The checker's verdict, with what the replicas counted (summed over those running at the end). */
export interface FaultReport extends CheckReport {
  counters: {
    /** Grants retried because Postgres had seen a newer fence (a stale holder, or a Redis that lost its counters). */
    fenceRejections: number;
    /** Batches granted on Postgres alone because Redis was unreachable. */
    lockUnavailable: number;
    /** Time spent getting (or failing to get) pool locks, and how many times: the cost of the lock step. */
    lockWaitSeconds: number;
    lockWaits: number;
  };
}

/** A lost attempt whose client timed out may still be carried out later by a slow or frozen replica. */
export const timedOut = (attempt: Attempt): boolean => attempt.result === "lost" && (attempt.code === "DeadlineExceeded" || attempt.code === "Canceled");

/** The clean-ups of every harness started in this worker, finished or not. */
const open = new Set<() => Promise<void>>();

/**
 * Kills every process the suite started and removes its databases and folders, even when a
 * set-up timed out half-way. Call it from afterAll.
 */
export async function closeFaultHarnesses(): Promise<void> {
  await killAllChildren().catch(() => {});
  for (const close of [...open]) await close();
}

export async function startFaultHarness(options: HarnessOptions): Promise<FaultHarness> {
  allowChildren();
  const dir = mkdtempSync(join(tmpdir(), "cls-faults-"));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  let closed = false;
  /** Registers a clean-up; runs it at once if the harness was closed meanwhile (a timed-out set-up). */
  const defer = async (cleanup: () => Promise<void> | void) => {
    if (closed) await Promise.resolve(cleanup()).catch(() => {});
    else cleanups.push(cleanup);
    if (closed) throw new Error("fault harness closed during set-up");
  };
  const close = async () => {
    closed = true;
    open.delete(close);
    await killAllChildren().catch(() => {});
    for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {});
  };
  open.add(close);
  try {
    let testDatabase: TestDatabase | undefined;
    let postgres: PrivatePostgres | undefined;
    let databaseUrl: string;
    if (options.postgres === "private") {
      postgres = await startPrivatePostgres();
      await defer(() => postgres!.stop());
      databaseUrl = postgres.url;
    } else {
      testDatabase = await createTestDatabase();
      await defer(() => testDatabase!.drop());
      databaseUrl = testDatabase.url;
    }
    const migrating = testDatabase?.handle ?? (await openDatabase({ url: databaseUrl, maxConnections: 2 }));
    await migrateAllocation(migrating.root);
    if (!testDatabase) await migrating.close();

    let redis: PrivateRedis | undefined;
    let redisUrl: string;
    if (options.redis === "private") {
      redis = await startPrivateRedis();
      await defer(() => redis!.stop());
      redisUrl = redis.url;
    } else {
      redisUrl = `redis://127.0.0.1:${await freePort()}`;
    }

    const sink: NotificationSink = await startNotificationSink();
    await defer(() => sink.close());
    const credentials = await writeReplicaCredentials(dir);

    const ports = await freePorts(REPLICAS * 3);
    const replicas = await startReplicas({
      count: REPLICAS,
      ports: Array.from({ length: REPLICAS }, (_, i) => ({ public: ports[3 * i]!, internal: ports[3 * i + 1]!, metrics: ports[3 * i + 2]! })),
      ca: credentials.tls.cert,
      env: {
        ...credentials.env,
        DATABASE_URL: databaseUrl,
        // Three replicas per suite, two suites at once, on a shared Postgres of 100 connections.
        DATABASE_MAX_CONNECTIONS: "4",
        REDIS_URL: redisUrl,
        NOTIFICATION_INTERNAL_URL: sink.url,
        RECLAIM_INTERVAL_SECONDS: "86400",
        LOG_LEVEL: "warn",
        OTEL_EXPORTER_OTLP_ENDPOINT: "",
        FAULT_CRASH_AFTER_COMMIT: "0",
      },
      ...(options.envFor ? { envFor: options.envFor } : {}),
    });
    await defer(() => replicas.close());
    await replicas.waitAllUp();

    const fleet = await seedFleet({
      internalUrl: replicas.replicas[0]!.internalUrl,
      publicUrl: replicas.replicas[0]!.publicUrl,
      ca: credentials.tls.cert,
      tokens: credentials.tokens,
      staff: credentials.staff,
      shape: options.shape ?? DEFAULT_SHAPE,
    });
    const capacityOfCamera = new Map(fleet.cameras.map((camera) => [camera.key, fleet.pools.find((p) => p.poolId === camera.poolId)!.capacity]));

    return {
      replicas,
      redis,
      postgres,
      databaseUrl,
      fleet,
      run(clientOptions = {}) {
        const sampler = startSampler(databaseUrl);
        const clients = startClients({
          replicaUrls: replicas.replicas.map((r) => r.publicUrl),
          ca: credentials.tls.cert,
          cameras: fleet.cameras,
          clients: CLIENTS,
          ...clientOptions,
        });
        // A run cut short (a failed wait) must not go on calling into a closed harness.
        cleanups.push(() => clients.abort());
        cleanups.push(async () => void (await sampler.stop()));
        return {
          clients,
          async finish(finishOptions = {}) {
            const history = await clients.stop();
            const samples: SampleReport = await sampler.stop();
            // Replicas that died are back (or the failure says why), so their counters can be read.
            await replicas.waitAllUp();
            const state = await readDatabaseState(databaseUrl);
            const verdict = checkHistory({ history, ...state, samples, capacities: capacityOfCamera, landsLate: finishOptions.landsLate ?? timedOut });
            const metricsUrls = replicas.replicas.map((r) => r.metricsUrl);
            return {
              ...verdict,
              counters: {
                fenceRejections: await scrapeCounter(metricsUrls, "cls_lock_fence_rejections"),
                lockUnavailable: await scrapeCounter(metricsUrls, "cls_lock_unavailable"),
                lockWaitSeconds: Math.round((await scrapeCounter(metricsUrls, "cls_lock_wait_seconds_sum")) * 1000) / 1000,
                lockWaits: await scrapeCounter(metricsUrls, "cls_lock_wait_seconds_count"),
              },
            };
          },
        };
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
