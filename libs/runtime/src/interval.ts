import type { Logger } from "pino";

/**
 * Runs `job` every `intervalMs`, never two runs at once in this process, logging failures
 * and carrying on. Jobs must themselves be safe to run on several replicas at the same time.
 */
export function startInterval(job: () => Promise<unknown>, intervalMs: number, logger: Logger): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    job()
      .catch((error: unknown) => logger.warn({ err: error }, "scheduled job failed; will retry"))
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
