import { readConfig, serviceBaseShape, z } from "@cls/config";

/** The notification service's environment, read once. */
export function readNotificationConfig(env: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      ...serviceBaseShape,
      /**
       * Development and tests only: accept webhooks to `http:`, `localhost`, `*.local`,
       * `*.internal` and single-label hosts, and deliver to private addresses. IP literals are
       * refused either way (SPEC L13).
       */
      WEBHOOK_ALLOW_PRIVATE_TARGETS: z
        .enum(["true", "false"], { message: "must be true or false" })
        .default("false")
        .transform((value) => value === "true"),
      /** Seconds between runs of the webhook delivery worker. */
      WEBHOOK_DELIVERY_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(3_600).default(5),
    },
    env,
  );
}
