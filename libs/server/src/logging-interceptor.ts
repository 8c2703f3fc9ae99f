import { ConnectError, Code, type Interceptor } from "@connectrpc/connect";
import { activeTraceId } from "./telemetry-interceptor.js";
import type { Logger } from "pino";

/** One log line per RPC: method, code, duration and trace id. Deliberately no peer address. */
export function loggingInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const method = `${req.service.typeName}/${req.method.name}`;
    const traceId = activeTraceId();
    try {
      const response = await next(req);
      logger.info({ rpc: method, code: "ok", duration_ms: round(performance.now() - started), trace_id: traceId }, "rpc");
      return response;
    } catch (error) {
      const code = error instanceof ConnectError ? Code[error.code] : "unknown";
      logger.info({ rpc: method, code, duration_ms: round(performance.now() - started), trace_id: traceId }, "rpc");
      throw error;
    }
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;
