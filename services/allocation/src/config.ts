import { readConfig, serviceBaseShape, z } from "@cls/config";

/** The allocation service's environment, read once. */
export function readAllocationConfig(env: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      ...serviceBaseShape,
      /** Ed25519 PKCS#8 PEM that signs leases; EdgeVis Servers pin its public key. */
      LEASE_SIGNING_KEY_FILE: z.string(),
      /** Internal gRPC address of the notification service. */
      NOTIFICATION_INTERNAL_URL: z.string().url(),
      /** Seconds between runs of the reclaim job. */
      RECLAIM_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
      /**
       * Fault injection for the fault suite only, never in production: the chance (0 to 1)
       * that the process kills itself after a grant commits and before it replies.
       */
      FAULT_CRASH_AFTER_COMMIT: z.coerce.number().min(0).max(1).default(0),
    },
    env,
  );
}
