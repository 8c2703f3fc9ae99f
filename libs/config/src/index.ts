import { z } from "zod";

export { z };

/**
 * Reads a service's environment once against a zod object schema whose keys are the
 * variable names. Fails fast naming every bad variable; returns a frozen result.
 */
export function readConfig<Shape extends z.ZodRawShape>(
  shape: Shape,
  env: Record<string, string | undefined> = process.env,
): Readonly<z.infer<z.ZodObject<Shape>>> {
  const source: Record<string, string | undefined> = {};
  for (const name of Object.keys(shape)) {
    const value = env[name];
    source[name] = value === undefined || value.trim() === "" ? undefined : value;
  }
  const parsed = z.object(shape).safeParse(source);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
      .join("; ");
    throw new Error(`invalid configuration: ${problems}`);
  }
  return Object.freeze(parsed.data);
}

/** A TCP port; 0 asks the system for a free one. */
export const port = (fallback: number) =>
  z
    .string()
    .regex(/^\d{1,5}$/, "must be a port number")
    .optional()
    .transform((value) => (value === undefined ? fallback : Number(value)))
    .pipe(z.number().int().min(0).max(65535));

/** An optional URL such as postgres://… or redis://…. */
export const optionalUrl = () => z.string().url().optional();

/** Log levels pino understands. */
export const logLevel = () =>
  z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info");

/** Variables every service process reads. */
export const serviceBaseShape = {
  /** postgres://…; required when a service runs on its own. */
  DATABASE_URL: z.string().url().optional(),
  /** Most Postgres connections this process opens. */
  DATABASE_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(200).default(10),
  /** redis://…; locks, fences and nonces. */
  REDIS_URL: z.string().url().optional(),
  /** HTTPS port for EdgeVis Servers. */
  PUBLIC_PORT: port(8443),
  /** gRPC port for vendor tools and other services; never exposed publicly. */
  INTERNAL_PORT: port(9090),
  /** PEM certificate chain and key of the public port. */
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  /** JSON object of trusted internal callers: actor (staff:… or service:…) → PEM public key. */
  INTERNAL_TRUSTED_CALLERS_FILE: z.string().optional(),
  /** This service's Ed25519 PKCS#8 PEM, proving `service:<name>` on calls to other services. */
  SERVICE_SIGNING_KEY_FILE: z.string().optional(),
  /** PEM public key(s) that verify access tokens (several during a rotation). */
  TOKEN_VERIFY_KEYS_FILE: z.string().optional(),
  LOG_LEVEL: logLevel(),
  /** Port of the Prometheus scrape endpoint (/metrics); 0 turns it off. */
  METRICS_PORT: port(9464),
  /** OTLP/HTTP collector base URL, e.g. http://otel-collector:4318; traces are off when unset. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
} as const;
