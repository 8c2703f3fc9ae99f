import { startInterval } from "@cls/runtime";
import type { AllocationContext } from "./context.js";
import { reclaimLapsed } from "./reclaim.js";
import { notifySilentServers } from "./silent-servers.js";

/** Every scheduled job of the allocation service, once. Each is safe on several replicas at once. */
export async function runAllocationJobs(ctx: AllocationContext): Promise<void> {
  await reclaimLapsed(ctx);
  await notifySilentServers(ctx);
}

/** Runs the jobs on an interval. */
export function startAllocationJobs(ctx: AllocationContext, intervalMs = 60_000): { stop(): void } {
  return startInterval(() => runAllocationJobs(ctx), intervalMs, ctx.logger);
}
