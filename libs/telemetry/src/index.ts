import { NodeSDK } from "@opentelemetry/sdk-node";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";

let sdk: NodeSDK | undefined;

/**
 * Starts OpenTelemetry for this process, first thing in main.ts. Traces are exported over
 * OTLP/HTTP to `otlpEndpoint` when one is configured; W3C trace context propagates on every hop.
 */
export function startTelemetry(serviceName: string, otlpEndpoint: string | undefined): void {
  if (sdk || !otlpEndpoint) return;
  sdk = new NodeSDK({ serviceName, traceExporter: new OTLPTraceExporter({ url: `${otlpEndpoint.replace(/\/$/, "")}/v1/traces` }) });
  sdk.start();
}

/** Flushes and stops telemetry; part of graceful shutdown. */
export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}
