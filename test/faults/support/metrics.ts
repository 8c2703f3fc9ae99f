/** Sums a Prometheus counter (every label set) over the replicas' /metrics endpoints that answer. */
export async function scrapeCounter(metricsUrls: readonly string[], name: string): Promise<number> {
  let total = 0;
  const sample = new RegExp(`^${name}(?:_total)?(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`);
  for (const url of metricsUrls) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      for (const line of (await res.text()).split("\n")) {
        const match = sample.exec(line);
        if (match) total += Number(match[1]);
      }
    } catch {
      // A replica that is down has no counters to give (they restart from zero anyway).
    }
  }
  return total;
}
