import { createPublicKey } from "node:crypto";
import { join } from "node:path";
import { parseTrustedCallers, type TrustedCaller } from "@cls/auth";
import { startTelemetry } from "@cls/telemetry";
import { systemClock } from "@cls/clock";
import { openInfrastructure, readConfiguredFile } from "@cls/runtime";
import { createLogger, exitOnSignals, loadOrCreateSelfSignedTls, spkiPin, type TlsMaterial } from "@cls/server";
import { readAllInOneConfig } from "./config.js";
import { LOCAL_STAFF_ACTOR, loadOrCreateEd25519Key } from "./keys.js";
import { migrateAll, startMesh } from "./mesh.js";

const config = readAllInOneConfig();
startTelemetry({ serviceName: "cls", otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT, metricsPort: config.METRICS_PORT || undefined });
const logger = createLogger("cls", config.LOG_LEVEL);
const dataDir = config.CLS_DATA_DIR;

const infrastructure = await openInfrastructure({
  databaseUrl: config.DATABASE_URL,
  embeddedDir: join(dataDir, "pgdata"),
  maxConnections: config.DATABASE_MAX_CONNECTIONS,
  redisUrl: config.REDIS_URL,
  logger,
});
await migrateAll(infrastructure.database);

const tls: TlsMaterial =
  config.TLS_CERT_FILE && config.TLS_KEY_FILE
    ? { cert: readConfiguredFile("TLS_CERT_FILE", config.TLS_CERT_FILE), key: readConfiguredFile("TLS_KEY_FILE", config.TLS_KEY_FILE) }
    : await loadOrCreateSelfSignedTls(join(dataDir, "tls"));

// Without a configured list, one local staff key (made on first start) may use the internal port.
const localStaffKeyPath = join(dataDir, "keys", "staff.pem");
const localStaff: TrustedCaller = {
  actor: LOCAL_STAFF_ACTOR,
  publicKeyPem: createPublicKey(loadOrCreateEd25519Key(localStaffKeyPath)).export({ type: "spki", format: "pem" }).toString(),
};

const mesh = await startMesh({
  database: infrastructure.database,
  locks: infrastructure.locks,
  revocations: infrastructure.revocations,
  ...(infrastructure.redis ? { redis: infrastructure.redis } : {}),
  readiness: infrastructure.readiness,
  clock: systemClock(),
  logger,
  tls,
  leaseSigningKeyPem: config.LEASE_SIGNING_KEY_FILE
    ? readConfiguredFile("LEASE_SIGNING_KEY_FILE", config.LEASE_SIGNING_KEY_FILE)
    : loadOrCreateEd25519Key(join(dataDir, "keys", "lease-signing.pem")),
  tokenSigningKeyPem: config.TOKEN_SIGNING_KEY_FILE
    ? readConfiguredFile("TOKEN_SIGNING_KEY_FILE", config.TOKEN_SIGNING_KEY_FILE)
    : loadOrCreateEd25519Key(join(dataDir, "keys", "token-signing.pem")),
  trustedCallers: config.INTERNAL_TRUSTED_CALLERS_FILE
    ? parseTrustedCallers(readConfiguredFile("INTERNAL_TRUSTED_CALLERS_FILE", config.INTERNAL_TRUSTED_CALLERS_FILE))
    : [localStaff],
  webhookAllowPrivateTargets: config.WEBHOOK_ALLOW_PRIVATE_TARGETS,
  layout: "single-port",
  publicPort: config.PUBLIC_PORT,
  internalPort: config.INTERNAL_PORT,
  host: config.LISTEN_HOST,
});

const storage = infrastructure.database.kind === "pglite" ? `embedded PGlite in ${join(dataDir, "pgdata")}` : "Postgres from DATABASE_URL";
const locking = config.REDIS_URL ? "Redis from REDIS_URL" : "in-process locks";
process.stdout.write(
  [
    "CLS is running (all four services in one process)",
    `  public API (Connect, gRPC, gRPC-web over HTTPS): ${mesh.publicUrl}`,
    `  internal gRPC (vendor tools):                     ${mesh.internalUrl.replace("http://", "")}`,
    `  storage: ${storage}; locks: ${locking}`,
    `  TLS certificate SPKI pin (sha256/base64): ${spkiPin(tls.cert)}`,
    `  lease-signing key id: ${mesh.leaseSigner.keyId}`,
    config.INTERNAL_TRUSTED_CALLERS_FILE ? "  internal callers: from INTERNAL_TRUSTED_CALLERS_FILE" : `  internal callers: ${LOCAL_STAFF_ACTOR}, key ${localStaffKeyPath}`,
    "",
  ].join("\n"),
);
exitOnSignals(logger, async () => {
  await mesh.close();
  await infrastructure.close();
});
