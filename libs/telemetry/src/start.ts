import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { otlpSpanExporter } from "./otlp-exporter.js";

export interface TelemetryOptions {
  serviceName: string;
  /** OTLP/HTTP collector base URL; traces are exported there when set. */
  otlpEndpoint?: string | undefined;
  /** Port of the Prometheus scrape endpoint (/metrics); none when undefined. */
  metricsPort?: number | undefined;
  metricsHost?: string;
  /** Tests collect spans here instead of exporting them. */
  spanExporter?: SpanExporter;
}

export interface Telemetry {
  /** The Prometheus reader, for scraping in-process (tests) when no port is served. */
  prometheus: PrometheusExporter;
  /** Flushes and stops exporting; part of graceful shutdown. */
  shutdown(): Promise<void>;
}

let started: Telemetry | undefined;

/**
 * Starts OpenTelemetry for this process, first thing in main.ts: W3C trace context on every
 * hop, spans exported over OTLP when configured, and metrics for Prometheus. The resource
 * names the service only: no host address is ever attached.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  if (started) return started;
  const resource = resourceFromAttributes({ "service.name": options.serviceName });
  const spanProcessors: SpanProcessor[] = [];
  if (options.otlpEndpoint) {
    spanProcessors.push(new BatchSpanProcessor({ exporter: otlpSpanExporter(options.otlpEndpoint) }));
  }
  if (options.spanExporter) spanProcessors.push(new SimpleSpanProcessor({ exporter: options.spanExporter }));
  const tracerProvider = new TracerProvider({ resource, spanProcessors });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(tracerProvider);

  const prometheus = new PrometheusExporter({
    port: options.metricsPort ?? 0,
    ...(options.metricsHost ? { host: options.metricsHost } : {}),
    preventServerStart: options.metricsPort === undefined,
  });
  const meterProvider = new MeterProvider({ resource, readers: [prometheus] });
  metrics.setGlobalMeterProvider(meterProvider);

  started = {
    prometheus,
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      started = undefined;
    },
  };
  return started;
}

/** Flushes and stops this process's telemetry, if started; part of graceful shutdown. */
export async function stopTelemetry(): Promise<void> {
  await started?.shutdown();
}
