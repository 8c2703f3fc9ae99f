import { describe, expect, it } from "vitest";
import { compareVersions, decideFirmware, formatVersion, MINIMUM_SUPPORTED_VERSION, parseVersion, type ModelRules, type Version } from "./firmware.js";

const hardware: ModelRules = { model: "hd-ip200", kind: "hardware", minV9Version: [9, 2, 0] };
const container: ModelRules = { model: "evvr-container", kind: "container", minV9Version: [9, 0, 0] };

function v(text: string): Version {
  const version = parseVersion(text);
  if (!version) throw new Error(`test version ${text} does not parse`);
  return version;
}

describe("parseVersion", () => {
  it.each([
    ["9", [9, 0, 0]],
    ["9.2", [9, 2, 0]],
    ["9.2.1", [9, 2, 1]],
    ["v9.2", [9, 2, 0]],
    ["  8.4.17 ", [8, 4, 17]],
    ["10.0", [10, 0, 0]],
    ["7.9999.9999", [7, 9999, 9999]],
  ])("accepts %j as %j", (text, expected) => {
    expect(parseVersion(text)).toEqual(expected);
  });

  it.each(["", " ", "abc", "9.", ".9", "9.2.1.4", "9.x", "-9.2", "V9.2", "9,2", "9.2-beta", "1234.0", "9.12345", "9 .2"])(
    "refuses %j",
    (text) => {
      expect(parseVersion(text)).toBeUndefined();
    },
  );
});

describe("compareVersions", () => {
  it("orders by major, then minor, then patch, numerically", () => {
    expect(compareVersions(v("9.2"), v("9.2.0"))).toBe(0);
    expect(compareVersions(v("9.10"), v("9.2"))).toBeGreaterThan(0);
    expect(compareVersions(v("9.1.9"), v("9.2"))).toBeLessThan(0);
    expect(compareVersions(v("10.0"), v("9.99.99"))).toBeGreaterThan(0);
    expect(compareVersions(v("8.4"), v("8.4.1"))).toBeLessThan(0);
  });

  it("treats missing trailing parts as zero", () => {
    expect(compareVersions([9, 2], [9, 2, 0])).toBe(0);
    expect(compareVersions([9], [9, 0, 1])).toBeLessThan(0);
  });

  it("round-trips through formatVersion", () => {
    expect(formatVersion(v("v9.2"))).toBe("9.2.0");
  });
});

describe("decideFirmware: hardware encoders (SPEC L6, L6a)", () => {
  it.each(["7.9.9", "7.0", "6.5", "0.1"])("refuses %s as too old, naming the minimum supported version 8.0 (SPEC L6)", (text) => {
    const decision = decideFirmware(hardware, v(text), undefined);
    expect(MINIMUM_SUPPORTED_VERSION).toBe("8.0");
    expect(decision).toMatchObject({ outcome: "refused", reason: "too_old" });
    expect(decision.outcome === "refused" && decision.message).toContain("8.0");
  });

  it.each(["8.0", "8.4.2", "8.99"])("grants %s a legacy licence when never seen on v9 (SPEC L6)", (text) => {
    expect(decideFirmware(hardware, v(text), undefined)).toEqual({ outcome: "legacy" });
    expect(decideFirmware(hardware, v(text), v(text))).toEqual({ outcome: "legacy" });
  });

  it.each(["9.2", "9.2.1", "9.5", "10.0"])("refuses v8 after having seen %s: downgrade not supported (SPEC L6a)", (seen) => {
    const decision = decideFirmware(hardware, v("8.4"), v(seen));
    expect(decision).toMatchObject({ outcome: "refused", reason: "downgrade" });
    expect(decision.outcome === "refused" && decision.message).toContain("downgrade not supported");
  });

  it("grants legacy to v8 when the highest version seen is only 9.1 (never took part in v9 licensing) (SPEC L6a)", () => {
    expect(decideFirmware(hardware, v("8.4"), v("9.1.9"))).toEqual({ outcome: "legacy" });
    expect(decideFirmware(hardware, v("8.4"), v("8.9"))).toEqual({ outcome: "legacy" });
  });

  it.each(["9.0", "9.1", "9.1.99"])("refuses hardware on %s: v9 licensing starts at 9.2 (SPEC L6)", (text) => {
    const decision = decideFirmware(hardware, v(text), undefined);
    expect(decision).toMatchObject({ outcome: "refused", reason: "v9_below_minimum" });
    expect(decision.outcome === "refused" && decision.message).toContain("9.2");
  });

  it.each(["9.2", "9.2.0", "9.3.1", "10.0"])("draws %s from the pool (SPEC L6)", (text) => {
    expect(decideFirmware(hardware, v(text), undefined)).toEqual({ outcome: "pool" });
    expect(decideFirmware(hardware, v(text), v("9.4"))).toEqual({ outcome: "pool" });
  });

  it("honours a model's own minimum v9 version from the catalogue (SPEC L6, L1a)", () => {
    const later: ModelRules = { ...hardware, model: "minicam", minV9Version: [9, 3, 0] };
    expect(decideFirmware(later, v("9.2"), undefined)).toMatchObject({ outcome: "refused", reason: "v9_below_minimum" });
    expect(decideFirmware(later, v("9.3"), undefined)).toEqual({ outcome: "pool" });
  });
});

describe("decideFirmware: EVVR Containers (SPEC L6)", () => {
  it.each(["9.0", "9.1", "9.2", "10.0"])("draws %s from the pool: containers are v9 from 9.0", (text) => {
    expect(decideFirmware(container, v(text), undefined)).toEqual({ outcome: "pool" });
  });

  it.each(["8.0", "8.4", "7.2"])("refuses a container on %s with a message naming 9.0", (text) => {
    const decision = decideFirmware(container, v(text), undefined);
    expect(decision.outcome).toBe("refused");
    expect(decision.outcome === "refused" && decision.message).toContain("9.0");
  });

  it("refuses a container seen on 9.2 that now reports 8.x as a downgrade (SPEC L6a: any encoder)", () => {
    const decision = decideFirmware(container, v("8.4"), v("9.2"));
    expect(decision).toMatchObject({ outcome: "refused", reason: "downgrade" });
    expect(decision.outcome === "refused" && decision.message).toContain("downgrade not supported");
  });
});
