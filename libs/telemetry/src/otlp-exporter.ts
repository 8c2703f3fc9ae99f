import { ExportResultCode } from "@opentelemetry/core";
import type { SpanExporter } from "@opentelemetry/sdk-trace";

/**
 * Exports spans over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`. The exporter's package
 * (and its protobuf runtime) is imported here, when a collector is configured, rather than
 * at start-up by every process.
 */
export function otlpSpanExporter(endpoint: string): SpanExporter {
  const url = `${endpoint.replace(/\/$/, "")}/v1/traces`;
  const exporter = import("@opentelemetry/exporter-trace-otlp-proto").then(({ OTLPTraceExporter }) => new OTLPTraceExporter({ url }));
  return {
    export(spans, done) {
      exporter.then(
        (loaded) => loaded.export(spans, done),
        (error: Error) => done({ code: ExportResultCode.FAILED, error }),
      );
    },
    shutdown: () => exporter.then((loaded) => loaded.shutdown()),
    forceFlush: () => exporter.then((loaded) => loaded.forceFlush()),
  };
}
