export { startTelemetry, stopTelemetry, type Telemetry, type TelemetryOptions } from "./start.js";
export { clsMetrics, observeGauge } from "./instruments.js";
export { inSpan, tracer } from "./spans.js";
