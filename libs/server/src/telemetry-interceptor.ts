import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, propagation, SpanKind, SpanStatusCode, trace, type TextMapGetter } from "@opentelemetry/api";
import { clsMetrics, tracer } from "@cls/telemetry";

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

/**
 * The outermost server interceptor: continues the caller's W3C trace in a server span and
 * counts the call. Attributes name the RPC only; never the peer's address.
 */
export function telemetryInterceptor(): Interceptor {
  return (next) => async (req) => {
    const parent = propagation.extract(context.active(), req.header, headerGetter);
    const labels = { rpc_service: req.service.typeName, rpc_method: req.method.name };
    const started = performance.now();
    return context.with(parent, () =>
      tracer().startActiveSpan(
        `${req.service.typeName}/${req.method.name}`,
        { kind: SpanKind.SERVER, attributes: { "rpc.system": "connect_rpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name } },
        async (span) => {
          let code = "ok";
          try {
            return await next(req);
          } catch (error) {
            code = error instanceof ConnectError ? Code[error.code] : "Unknown";
            span.setStatus({ code: SpanStatusCode.ERROR, message: code });
            throw error;
          } finally {
            span.setAttribute("rpc.connect_rpc.error_code", code);
            span.end();
            const { rpcRequests, rpcDuration } = clsMetrics();
            rpcRequests.add(1, { ...labels, code });
            rpcDuration.record((performance.now() - started) / 1000, { ...labels, code });
          }
        },
      ),
    );
  };
}

/** Client side: a span per outgoing call, with its context injected for the next hop. */
export function tracingClientInterceptor(): Interceptor {
  return (next) => (req) =>
    tracer().startActiveSpan(
      `${req.service.typeName}/${req.method.name}`,
      { kind: SpanKind.CLIENT, attributes: { "rpc.system": "connect_rpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name } },
      async (span) => {
        propagation.inject(context.active(), req.header, { set: (carrier, key, value) => carrier.set(key, value) });
        try {
          return await next(req);
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof ConnectError ? Code[error.code] : "error" });
          throw error;
        } finally {
          span.end();
        }
      },
    );
}

/** The active trace id, for log lines. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && spanContext.traceId !== "00000000000000000000000000000000" ? spanContext.traceId : undefined;
}
