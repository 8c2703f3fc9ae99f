import type { z } from "zod";
import type { Clock } from "@cls/clock";
import { startTelemetry } from "@cls/telemetry";
import { systemClock } from "@cls/clock";
import type { serviceBaseShape } from "@cls/config";
import { migrateSchema, type MigrationSet } from "@cls/db";
import {
  createInternalSigner,
  createInternalVerifier,
  createTokenVerifier,
  parsePublicKeysPem,
  parseTrustedCallers,
  type InternalSigner,
  type TokenVerifier,
} from "@cls/auth";
import {
  authInterceptor,
  createLogger,
  exitOnSignals,
  internalAuthInterceptor,
  loadOrCreateSelfSignedTls,
  startServers,
  type Logger,
  type TlsMaterial,
} from "@cls/server";
import { openInfrastructure, readConfiguredFile, type Infrastructure } from "./infrastructure.js";
import type { ServiceModule } from "./module.js";

type BaseConfig = Readonly<z.infer<z.ZodObject<typeof serviceBaseShape>>>;

export interface BuildContext {
  infrastructure: Infrastructure;
  logger: Logger;
  clock: Clock;
  tokenVerifier: TokenVerifier;
  /** This service's internal credential, for calling other services (needs SERVICE_SIGNING_KEY_FILE). */
  serviceSigner(): InternalSigner;
}

export interface StandaloneOptions {
  name: string;
  config: BaseConfig;
  schema: string;
  migrations: MigrationSet;
  /** Makes the verifier when the service holds the signing key itself (server-identity). */
  tokenVerifier?: (clock: Clock) => TokenVerifier;
  build(context: BuildContext): Promise<ServiceModule> | ServiceModule;
}

function loadTls(config: BaseConfig): Promise<TlsMaterial> | TlsMaterial {
  if (config.TLS_CERT_FILE && config.TLS_KEY_FILE) {
    return { cert: readConfiguredFile("TLS_CERT_FILE", config.TLS_CERT_FILE), key: readConfiguredFile("TLS_KEY_FILE", config.TLS_KEY_FILE) };
  }
  if (config.TLS_CERT_FILE || config.TLS_KEY_FILE) throw new Error("TLS_CERT_FILE and TLS_KEY_FILE must be set together");
  return loadOrCreateSelfSignedTls(".cls-data/tls");
}

/**
 * Runs one service in its own process, as Kubernetes does.
 * `main.ts migrate` applies the service's migrations and exits; `main.ts` (or `serve`) serves.
 */
export async function runStandaloneService(options: StandaloneOptions): Promise<void> {
  const { config, name } = options;
  // First, so that everything after it is traced and measured.
  startTelemetry({ serviceName: `cls-${name}`, otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT, metricsPort: config.METRICS_PORT || undefined });
  const logger = createLogger(name, config.LOG_LEVEL);
  const command = process.argv[2] ?? "serve";
  if (!config.DATABASE_URL) throw new Error("DATABASE_URL: required when a service runs on its own (npm start runs the embedded all-in-one)");
  const infrastructure = await openInfrastructure({
    databaseUrl: config.DATABASE_URL,
    maxConnections: config.DATABASE_MAX_CONNECTIONS,
    redisUrl: config.REDIS_URL,
    logger,
  });

  if (command === "migrate") {
    const applied = await migrateSchema(infrastructure.database.root, options.schema, options.migrations);
    logger.info({ applied }, `${name}: migrations applied`);
    await infrastructure.close();
    return;
  }
  if (command !== "serve") throw new Error(`unknown command ${command}: use 'serve' or 'migrate'`);

  const clock = systemClock();
  let tokenVerifier: TokenVerifier;
  if (options.tokenVerifier) {
    tokenVerifier = options.tokenVerifier(clock);
  } else {
    if (!config.TOKEN_VERIFY_KEYS_FILE) throw new Error("TOKEN_VERIFY_KEYS_FILE: required, the PEM public key(s) of server-identity's token key");
    tokenVerifier = createTokenVerifier(parsePublicKeysPem(readConfiguredFile("TOKEN_VERIFY_KEYS_FILE", config.TOKEN_VERIFY_KEYS_FILE)), { clock });
  }
  if (!config.INTERNAL_TRUSTED_CALLERS_FILE) {
    throw new Error("INTERNAL_TRUSTED_CALLERS_FILE: required, the JSON of staff and service public keys allowed on the internal port");
  }
  const internalVerifier = createInternalVerifier(parseTrustedCallers(readConfiguredFile("INTERNAL_TRUSTED_CALLERS_FILE", config.INTERNAL_TRUSTED_CALLERS_FILE)));
  let signer: InternalSigner | undefined;
  const serviceSigner = () => {
    if (!config.SERVICE_SIGNING_KEY_FILE) throw new Error(`SERVICE_SIGNING_KEY_FILE: required, ${name} calls other services and proves itself as service:${name}`);
    signer ??= createInternalSigner(`service:${name}`, readConfiguredFile("SERVICE_SIGNING_KEY_FILE", config.SERVICE_SIGNING_KEY_FILE));
    return signer;
  };
  const module = await options.build({ infrastructure, logger, clock, tokenVerifier, serviceSigner });
  const servers = await startServers({
    logger,
    public: {
      port: config.PUBLIC_PORT,
      tls: await loadTls(config),
      services: module.publicServices,
      interceptors: [authInterceptor(tokenVerifier, new Set(module.anonymousMethods), infrastructure.revocations, logger)],
    },
    internal: { port: config.INTERNAL_PORT, services: module.internalServices, interceptors: [internalAuthInterceptor(internalVerifier)] },
    readiness: infrastructure.readiness,
  });
  logger.info({ public_url: servers.publicUrl, internal_url: servers.internalUrl }, `${name} serving`);
  exitOnSignals(logger, async () => {
    await servers.close();
    await module.stop();
    await infrastructure.close();
  });
}
