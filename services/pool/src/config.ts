import { readConfig, serviceBaseShape, z } from "@cls/config";

/** The pool service's environment, read once. */
export function readPoolConfig(env: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      ...serviceBaseShape,
      /** Internal gRPC address of the allocation service, e.g. http://cls-allocation:9090. */
      ALLOCATION_INTERNAL_URL: z.string().url(),
      /** Internal gRPC address of the notification service. */
      NOTIFICATION_INTERNAL_URL: z.string().url(),
    },
    env,
  );
}
