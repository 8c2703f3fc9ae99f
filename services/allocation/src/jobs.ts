import type { AllocationContext } from "./context.js";
import { reclaimLapsed } from "./reclaim.js";

/** Runs the reclaim job on an interval; every replica may run it (work is shared by row locks). */
export function startReclaimJob(ctx: AllocationContext, intervalMs = 60_000): { stop(): void } {
  const timer = setInterval(() => {
    reclaimLapsed(ctx).catch((error: unknown) => ctx.logger.warn({ err: error }, "reclaim job failed; will retry"));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
