/** A pool row's capacity and use before and after a grant. */
export interface GrantedUsage {
  capacity: number;
  usedBefore: number;
  usedAfter: number;
}

/** Share of a pool's count at which customers are told (SPEC L15). */
export const USAGE_THRESHOLDS_PERCENT = [80, 100] as const;

/** The thresholds a grant carried the pool's use across, lowest first. */
export function thresholdsCrossed(usage: GrantedUsage): number[] {
  if (usage.capacity === 0) return [];
  return USAGE_THRESHOLDS_PERCENT.filter((percent) => {
    const mark = Math.ceil((usage.capacity * percent) / 100);
    return usage.usedBefore < mark && usage.usedAfter >= mark;
  });
}
