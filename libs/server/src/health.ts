import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@cls/proto";

/** A dependency readiness depends on (Postgres, Redis). Resolves true when usable. */
export type ReadinessCheck = () => Promise<boolean>;

/**
 * grpc.health.v1.Health. The empty service name is liveness: the process answers.
 * A named service is readiness: it is served here and every dependency check passes.
 */
export function registerHealth(router: ConnectRouter, serviceNames: readonly string[], checks: readonly ReadinessCheck[]): void {
  const known = new Set(serviceNames);
  router.service(Health, {
    async check(req) {
      if (req.service === "") return { status: Status.SERVING };
      if (!known.has(req.service)) return { status: Status.SERVICE_UNKNOWN };
      const results = await Promise.all(checks.map((check) => check().catch(() => false)));
      return { status: results.every(Boolean) ? Status.SERVING : Status.NOT_SERVING };
    },
    // eslint-disable-next-line require-yield
    async *watch() {
      throw new ConnectError("Watch is not supported; poll Check", Code.Unimplemented);
    },
  });
}
