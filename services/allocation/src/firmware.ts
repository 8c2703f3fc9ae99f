/** A firmware version as numbers: "9.2.1" is [9, 2, 1]. */
export type Version = readonly number[];

const VERSION_PATTERN = /^v?(\d{1,3})(?:\.(\d{1,4}))?(?:\.(\d{1,4}))?$/;

/** The oldest firmware CLS serves at all: v8.x gets a perpetual legacy licence (SPEC L6). */
export const MINIMUM_SUPPORTED_VERSION = "8.0";

/** Parses "9.2", "9.2.1" or "v9.2"; undefined when it is not a version. */
export function parseVersion(text: string): Version | undefined {
  const match = VERSION_PATTERN.exec(text.trim());
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

export function compareVersions(a: Version, b: Version): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

export function formatVersion(version: Version): string {
  return version.join(".");
}

/** What the catalogue says about a model (SPEC L1a). */
export interface ModelRules {
  model: string;
  kind: "hardware" | "container";
  /** First version that takes part in v9 licensing: 9.2 for hardware, 9.0 for containers. */
  minV9Version: Version;
}

export type FirmwareDecision =
  | { outcome: "legacy" }
  | { outcome: "pool" }
  | { outcome: "refused"; reason: "too_old" | "v9_below_minimum" | "downgrade"; message: string };

/**
 * The firmware rules of SPEC L6 and L6a, applied at registration and at every daily check.
 * `highestSeen` is the highest version CLS has seen this encoder report, if any.
 */
export function decideFirmware(rules: ModelRules, reported: Version, highestSeen: Version | undefined): FirmwareDecision {
  const major = reported[0] ?? 0;
  if (major === 8 && highestSeen && compareVersions(highestSeen, rules.minV9Version) >= 0) {
    return {
      outcome: "refused",
      reason: "downgrade",
      message: `downgrade not supported: encoder has run ${formatVersion(highestSeen)} and now reports ${formatVersion(reported)}`,
    };
  }
  if (rules.kind === "container") {
    if (major < 9) {
      return {
        outcome: "refused",
        reason: "too_old",
        message: `EVVR Containers need firmware 9.0 or later; ${formatVersion(reported)} is not supported`,
      };
    }
    return { outcome: "pool" };
  }
  if (major <= 7) {
    return {
      outcome: "refused",
      reason: "too_old",
      message: `firmware ${formatVersion(reported)} is not supported: the minimum supported version is ${MINIMUM_SUPPORTED_VERSION}`,
    };
  }
  if (major === 8) return { outcome: "legacy" };
  if (compareVersions(reported, rules.minV9Version) < 0) {
    return {
      outcome: "refused",
      reason: "v9_below_minimum",
      message: `${rules.model} takes part in v9 licensing from ${formatVersion(rules.minV9Version)}; ${formatVersion(reported)} is not supported`,
    };
  }
  return { outcome: "pool" };
}
