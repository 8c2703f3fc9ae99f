import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ClsError, isDependencyUnavailable } from "@cls/errors";
import type { Logger } from "pino";

/** Turns any thrown error into a ConnectError with the right code (SPEC error table). */
export function toConnectError(error: unknown, logger: Logger, method: string): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof ClsError) {
    return new ConnectError(error.message, error.code, undefined, error.details);
  }
  if (isDependencyUnavailable(error)) {
    logger.warn({ method, err: error }, "dependency unavailable");
    return new ConnectError("a dependency is unavailable; retry shortly", Code.Unavailable);
  }
  // A bug: log the cause, send nothing of it.
  logger.error({ method, err: error }, "internal error");
  return new ConnectError("internal error", Code.Internal);
}

/** One interceptor maps domain errors to Connect codes; unknown errors become `internal`. */
export function errorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      throw toConnectError(error, logger, req.method.name);
    }
  };
}
