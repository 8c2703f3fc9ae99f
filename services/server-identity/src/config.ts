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
      // Brute-force limits (issue 4, SPEC L13): failed attempts per window, keyed on the code,
      // the API key or the server, and across everything, never on the caller's address.
      /** Failed enrollments with one enrollment code, per 15 minutes. */
      ENROLLMENT_FAILURES_PER_CODE: z.coerce.number().int().min(1).max(1000).default(5),
      /** Failed enrollments across all codes, per minute. */
      ENROLLMENT_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(20),
      /** Failed API-key exchanges with one key id, per 15 minutes. */
      API_KEY_FAILURES_PER_KEY: z.coerce.number().int().min(1).max(1000).default(5),
      /** Failed API-key exchanges across all keys, per minute. */
      API_KEY_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(20),
      /** Failed sign-ins (Authenticate) of one server, per 5 minutes. */
      AUTHENTICATE_FAILURES_PER_SERVER: z.coerce.number().int().min(1).max(1000).default(10),
      /** Challenges issued to one server (CreateChallenge), per minute. */
      CHALLENGES_PER_SERVER_PER_MINUTE: z.coerce.number().int().min(1).max(1000).default(30),
    },
    env,
  );
}
