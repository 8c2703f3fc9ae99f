import { readConfig, serviceBaseShape, z } from "@cls/config";

/** The server-identity service's environment, read once. */
export function readServerIdentityConfig(env: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      ...serviceBaseShape,
      /** Ed25519 private key (PKCS#8 PEM) that signs access tokens. */
      TOKEN_SIGNING_KEY_FILE: z.string(),
      /** Lifetime of an access token, in seconds. */
      TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(3600).default(300),
      /** Internal gRPC address of the pool service, e.g. http://cls-pool:9090. */
      POOL_INTERNAL_URL: z.string().url(),
      /** Internal gRPC address of the allocation service. */
      ALLOCATION_INTERNAL_URL: z.string().url(),
      /** Internal gRPC address of the notification service. */
      NOTIFICATION_INTERNAL_URL: z.string().url(),
    },
    env,
  );
}
