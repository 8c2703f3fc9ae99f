/**
 * The allocation service under test: built as the container image builds it
 * (`deploy/build.ts`, esbuild bundle), migrated and started as its own process with
 * production settings (Postgres, Redis, TLS, LOG_LEVEL=warn, the chart's connection budget).
 */
import { createPublicKey } from "node:crypto";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import http2 from "node:http2";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { fromBinary } from "@bufbuild/protobuf";
import { createTokenIssuer, type TokenIssuer } from "@cls/auth";
import { systemClock } from "@cls/clock";
import { generateEd25519PrivateKeyPem } from "@cls/lease";
import { GetLeaseKeyResponseSchema, NotificationAdminService } from "@cls/proto";
import { loadOrCreateSelfSignedTls, type TlsMaterial } from "@cls/server";
import { buildServices } from "../../deploy/build.js";
import { chartDefaultHeapFlags, imageHeapFlags } from "../chart/heap.js";
import { startProcess, type StartedProcess } from "../support/process.js";
import { LEASE_KEY_PATH, openSession, unary } from "./h2.js";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
/**
 * Inside the repository, so the bundle resolves its packages from node_modules, and outside
 * dist/ (npm run build empties that): node_modules/.cache/cls-bench.
 */
export const WORK_DIR = join(REPO_ROOT, "node_modules", ".cache", "cls-bench");

/** Postgres connections per allocation pod in the chart (helm/cls/values.yaml: allocation.databaseMaxConnections); BENCH_DATABASE_MAX_CONNECTIONS overrides it for experiments. */
export const SERVICE_DATABASE_MAX_CONNECTIONS = Number(process.env.BENCH_DATABASE_MAX_CONNECTIONS ?? 20);

/**
 * node's V8 heap limits, as the chart runs allocation by default (helm/cls/values.yaml:
 * allocation.heap); BENCH_SERVICE_NODE_ARGS come after them on the command line, so they can
 * override them.
 */
export const SERVICE_HEAP_FLAGS = chartDefaultHeapFlags("allocation");

/** Keys and certificate the benchmark owns, written where the service reads them. */
export interface BenchKeys {
  tls: TlsMaterial;
  tlsCertFile: string;
  tlsKeyFile: string;
  leaseKeyFile: string;
  tokenVerifyKeysFile: string;
  /** Issues access tokens the service accepts, as server-identity would. */
  tokens: TokenIssuer;
  /** The vendor-tool identity the bench seeds with on the internal port, and its key. */
  staff: { actor: string; privateKeyPem: string };
  /** Actor → public key of the internal callers the service trusts (the bench's staff actor). */
  trustedCallersFile: string;
  /** The service's own key for its calls to other services (the notification stub). */
  serviceSigningKeyFile: string;
}

export async function prepareKeys(): Promise<BenchKeys> {
  const dir = join(WORK_DIR, "keys");
  mkdirSync(dir, { recursive: true });
  const tls = await loadOrCreateSelfSignedTls(join(dir, "tls"));
  const leaseKeyFile = join(dir, "lease-signing.pem");
  writeFileSync(leaseKeyFile, generateEd25519PrivateKeyPem(), { mode: 0o600 });
  const tokens = createTokenIssuer(generateEd25519PrivateKeyPem(), { clock: systemClock(), ttlMs: 3_600_000 });
  const tokenVerifyKeysFile = join(dir, "token-verify.pem");
  writeFileSync(tokenVerifyKeysFile, tokens.publicKeyPem);
  const staff = { actor: "staff:bench@vendor.example", privateKeyPem: generateEd25519PrivateKeyPem() };
  const trustedCallersFile = join(dir, "internal-trusted-callers.json");
  writeFileSync(trustedCallersFile, JSON.stringify({ [staff.actor]: createPublicKey(staff.privateKeyPem).export({ format: "pem", type: "spki" }).toString() }));
  const serviceSigningKeyFile = join(dir, "service-signing.pem");
  writeFileSync(serviceSigningKeyFile, generateEd25519PrivateKeyPem(), { mode: 0o600 });
  return {
    tls,
    tlsCertFile: join(dir, "tls", "tls.crt"),
    tlsKeyFile: join(dir, "tls", "tls.key"),
    leaseKeyFile,
    tokenVerifyKeysFile,
    tokens,
    staff,
    trustedCallersFile,
    serviceSigningKeyFile,
  };
}

/** Bundles the services into WORK_DIR/build (as npm run build does into dist/); returns the allocation bundle's path. */
export async function buildAllocationBundle(): Promise<string> {
  const files = await buildServices({ outdir: join(WORK_DIR, "build"), quiet: true });
  const bundle = files.find((file) => file.endsWith("allocation.mjs"));
  if (!bundle) throw new Error("the build made no allocation.mjs");
  return bundle;
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

/**
 * Stands in for the notification service's internal port: accepts every event the outbox
 * relay delivers (the acquire path writes none unless a pool crosses 80% or refuses).
 */
export async function startNotificationStub(): Promise<{ url: string; delivered(): number; close(): Promise<void> }> {
  let delivered = 0;
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(NotificationAdminService, {
        ingestEvents(request) {
          delivered += request.events.length;
          return { accepted: request.events.length };
        },
      }),
  });
  const server = http2.createServer({}, handler);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    delivered: () => delivered,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

export interface ServiceSettings {
  bundle: string;
  databaseUrl: string;
  redisUrl: string;
  keys: BenchKeys;
  notificationUrl: string;
}

export interface RunningService {
  pid: number;
  publicUrl: string;
  internalUrl: string;
  leaseKey: { keyId: string; publicKeyBase64: string };
  output(): string;
  /** SIGTERM (the service drains and exits, writing its CPU profile if asked for one). */
  stop(): Promise<void>;
}

function serviceEnv(settings: ServiceSettings, ports: { public: number; internal: number; metrics: number }): Record<string, string> {
  return {
    NODE_OPTIONS: ["--enable-source-maps", ...imageHeapFlags()].join(" "), // as the image sets it (deploy/Dockerfile)
    NODE_ENV: "production",
    DATABASE_URL: settings.databaseUrl,
    DATABASE_MAX_CONNECTIONS: String(SERVICE_DATABASE_MAX_CONNECTIONS),
    REDIS_URL: settings.redisUrl,
    PUBLIC_PORT: String(ports.public),
    INTERNAL_PORT: String(ports.internal),
    // Prometheus /metrics stays on, as in production, on a port of its own.
    METRICS_PORT: String(ports.metrics),
    TLS_CERT_FILE: settings.keys.tlsCertFile,
    TLS_KEY_FILE: settings.keys.tlsKeyFile,
    TOKEN_VERIFY_KEYS_FILE: settings.keys.tokenVerifyKeysFile,
    INTERNAL_TRUSTED_CALLERS_FILE: settings.keys.trustedCallersFile,
    SERVICE_SIGNING_KEY_FILE: settings.keys.serviceSigningKeyFile,
    LEASE_SIGNING_KEY_FILE: settings.keys.leaseKeyFile,
    NOTIFICATION_INTERNAL_URL: settings.notificationUrl,
    LOG_LEVEL: "warn",
  };
}

/** `allocation.mjs migrate` against the bench database. */
export async function migrateService(settings: ServiceSettings): Promise<void> {
  const child = startProcess(process.execPath, [settings.bundle, "migrate"], serviceEnv(settings, { public: 0, internal: 0, metrics: 0 }));
  const code = await new Promise<number | null>((done) => child.child.once("exit", done));
  if (code !== 0) throw new Error(`allocation migrate exited ${code}:\n${child.output()}`);
}

/** Starts `allocation.mjs serve` and waits until its public port answers GetLeaseKey. */
export async function startService(settings: ServiceSettings, options: { cpuProfile?: { dir: string; name: string }; nodeArgs?: string[] } = {}): Promise<RunningService> {
  const ports = { public: await freePort(), internal: await freePort(), metrics: await freePort() };
  const nodeArgs = [
    ...SERVICE_HEAP_FLAGS,
    ...(options.nodeArgs ?? []),
    ...(options.cpuProfile ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfile.dir}`, `--cpu-prof-name=${options.cpuProfile.name}`] : []),
  ];
  const started: StartedProcess = startProcess(process.execPath, [...nodeArgs, settings.bundle, "serve"], serviceEnv(settings, ports));
  const publicUrl = `https://127.0.0.1:${ports.public}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (started.child.exitCode !== null) throw new Error(`allocation service exited (${started.child.exitCode}):\n${started.output()}`);
    try {
      const session = await openSession(publicUrl, settings.keys.tls.cert);
      try {
        const answer = await unary(session, LEASE_KEY_PATH, new Uint8Array());
        if (answer.status === 200) {
          const key = fromBinary(GetLeaseKeyResponseSchema, answer.body);
          return {
            pid: started.child.pid!,
            publicUrl,
            internalUrl: `http://127.0.0.1:${ports.internal}`,
            leaseKey: { keyId: key.keyId, publicKeyBase64: Buffer.from(key.publicKey).toString("base64") },
            output: started.output,
            async stop() {
              const code = await started.stop();
              if (code !== 0) throw new Error(`allocation service exited ${code} on SIGTERM:\n${started.output()}`);
            },
          };
        }
      } finally {
        session.close();
      }
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await started.stop();
      throw new Error(`allocation service did not answer within 30 s:\n${started.output()}`);
    }
    await sleep(100);
  }
}
