import { Code, ConnectError } from "@connectrpc/connect";
import { isDependencyUnavailable } from "@cls/errors";

/** Deadline for calls to a neighbouring service. */
export const NEIGHBOUR_TIMEOUT_MS = 5_000;

/** True when a call to another service failed in a way that retrying may fix. */
export function isRetryableFailure(error: unknown): boolean {
  if (error instanceof ConnectError) return error.code === Code.Unavailable || error.code === Code.DeadlineExceeded;
  return isDependencyUnavailable(error);
}
