import { metrics, type Attributes, type ObservableGauge, type ObservableResult } from "@opentelemetry/api";

const meter = () => metrics.getMeter("cls");

/**
 * CLS's metrics, named as the chart's alert rules expect. Labels carry service, method,
 * pool and licence type: never an address.
 */
let instruments: ReturnType<typeof create> | undefined;

function create() {
  const m = meter();
  return {
    rpcRequests: m.createCounter("cls_rpc_requests", { description: "RPCs handled, by service, method and code" }),
    rpcDuration: m.createHistogram("cls_rpc_duration_seconds", {
      description: "RPC latency, by service, method and code",
      unit: "s",
      advice: { explicitBucketBoundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
    }),
    allocations: m.createCounter("cls_allocations", { description: "Licence events per pool: granted, refused, released, revoked, reclaimed" }),
    lockWait: m.createHistogram("cls_lock_wait_seconds", {
      description: "Time spent waiting for a pool lock",
      unit: "s",
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] },
    }),
    fenceRejections: m.createCounter("cls_lock_fence_rejections", { description: "Grants retried because Postgres had seen a newer fence" }),
    lockUnavailable: m.createCounter("cls_lock_unavailable", { description: "Grants made on Postgres alone because the lock store was unreachable" }),
  };
}

/** The instruments, created on first use from the global meter provider. */
export function clsMetrics() {
  instruments ??= create();
  return instruments;
}

const gauges = new Map<string, ObservableGauge>();

/**
 * Adds a source of values to a gauge, read when metrics are scraped. Returns a function
 * that removes the source again (a stopped module must not be read).
 */
export function observeGauge(name: string, description: string, read: () => Promise<{ value: number; attributes: Attributes }[]>): () => void {
  let gauge = gauges.get(name);
  if (!gauge) {
    gauge = meter().createObservableGauge(name, { description });
    gauges.set(name, gauge);
  }
  const callback = async (result: ObservableResult) => {
    try {
      for (const { value, attributes } of await read()) result.observe(value, attributes);
    } catch {
      // A scrape while the database is away reports nothing for this source.
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}
