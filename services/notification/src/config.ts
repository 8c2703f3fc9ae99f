import { readConfig, serviceBaseShape } from "@cls/config";

/** The notification service's environment, read once. */
export function readNotificationConfig(env: Record<string, string | undefined> = process.env) {
  return readConfig({ ...serviceBaseShape }, env);
}
