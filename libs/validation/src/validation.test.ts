import { create } from "@bufbuild/protobuf";
import { TimestampSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "@cls/errors";
import {
  MAX_TEXT_LENGTH,
  pageSize,
  requireCount,
  requireExternalId,
  requireId,
  requireListSize,
  requireSlug,
  requireText,
  requireTimestamp,
} from "./index.js";

/** Runs `fn`, expecting an InvalidArgumentError with exactly `message`. */
function refuses(fn: () => unknown, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `expected "${message}"`).toBeInstanceOf(InvalidArgumentError);
  expect((thrown as InvalidArgumentError).code).toBe(Code.InvalidArgument);
  expect((thrown as InvalidArgumentError).message).toBe(message);
}

const HEX32 = "0123456789abcdef0123456789abcdef";

describe("requireId", () => {
  it("accepts an id with the expected prefix", () => {
    expect(requireId("pool_id", `pool_${HEX32}`, "pool")).toBe(`pool_${HEX32}`);
    expect(requireId("server_id", `srv_${"f".repeat(32)}`, "srv")).toBe(`srv_${"f".repeat(32)}`);
  });

  it("refuses an empty id as required", () => {
    refuses(() => requireId("pool_id", "", "pool"), "pool_id: is required");
  });

  it("refuses another kind of id, bad hex, wrong length and padding", () => {
    for (const bad of [
      `srv_${HEX32}`,
      `poolx_${HEX32}`,
      `pool_${HEX32.toUpperCase()}`,
      `pool_${HEX32.slice(1)}`,
      `pool_${HEX32}0`,
      ` pool_${HEX32}`,
      `pool_${HEX32}\n`,
      `pool_${"g".repeat(32)}`,
      "pool_",
      "pool",
    ]) {
      refuses(() => requireId("pool_id", bad, "pool"), "pool_id: must be a pool_ id");
    }
  });
});

describe("requireExternalId", () => {
  it("accepts 1 to 128 printable ASCII characters", () => {
    expect(requireExternalId("camera_id", "c")).toBe("c");
    expect(requireExternalId("camera_id", "cam-07/stream#1~!")).toBe("cam-07/stream#1~!");
    expect(requireExternalId("camera_id", "x".repeat(128))).toBe("x".repeat(128));
  });

  it("refuses empty as required", () => {
    refuses(() => requireExternalId("encoder_id", ""), "encoder_id: is required");
  });

  it("refuses spaces, control characters, non-ASCII and more than 128 characters", () => {
    const why = "must be 1 to 128 printable ASCII characters without spaces";
    for (const bad of ["cam 1", " ", "cam\t1", "cam\n", "cam\x00", "cam\x7f", "caméra", "📷", "x".repeat(129)]) {
      refuses(() => requireExternalId("camera_id", bad), `camera_id: ${why}`);
    }
  });
});

describe("requireSlug", () => {
  it("accepts lowercase identifiers up to 64 characters", () => {
    for (const good of ["edgevis-camera", "evvr_camera", "hd-ip200", "9.2", "a", "a".repeat(64)]) {
      expect(requireSlug("licence_type", good)).toBe(good);
    }
  });

  it("refuses empty as required", () => {
    refuses(() => requireSlug("model", ""), "model: is required");
  });

  it("refuses upper case, leading punctuation, spaces, other characters and more than 64", () => {
    const why = "must be 1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit";
    for (const bad of ["EdgeVis", "-camera", ".camera", "_camera", "edge vis", "edge/vis", "edge:vis", "a".repeat(65), "é"]) {
      refuses(() => requireSlug("licence_type", bad), `licence_type: ${why}`);
    }
  });
});

describe("requireText", () => {
  it("trims and returns the text", () => {
    expect(requireText("name", "  Acme Security \t")).toBe("Acme Security");
    expect(requireText("name", "Ünïcødé ✓")).toBe("Ünïcødé ✓");
  });

  it("refuses empty or blank text as required unless optional", () => {
    refuses(() => requireText("name", ""), "name: is required");
    refuses(() => requireText("name", "   \n\t "), "name: is required");
    expect(requireText("note", "", { optional: true })).toBe("");
    expect(requireText("note", "   ", { optional: true })).toBe("");
  });

  it(`accepts ${MAX_TEXT_LENGTH} characters and refuses more`, () => {
    expect(MAX_TEXT_LENGTH).toBe(200);
    expect(requireText("name", "x".repeat(200))).toHaveLength(200);
    // Length counts after trimming.
    expect(requireText("name", ` ${"x".repeat(200)} `)).toHaveLength(200);
    refuses(() => requireText("name", "x".repeat(201)), "name: must be at most 200 characters");
    refuses(() => requireText("note", "x".repeat(201), { optional: true }), "note: must be at most 200 characters");
  });

  it("refuses control characters inside the text", () => {
    for (const bad of ["a\nb", "a\rb", "a\x00b", "a\x1bb", "a\x7fb", "a\tb"]) {
      refuses(() => requireText("name", bad), "name: must not contain control characters");
    }
  });
});

describe("requireCount", () => {
  it("accepts whole numbers from 0 to 1,000,000", () => {
    for (const good of [0, 1, 42, 1_000_000]) expect(requireCount("count", good)).toBe(good);
  });

  it("refuses negatives, fractions, non-finite numbers and more than a million", () => {
    for (const bad of [-1, 1.5, 0.1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1_000_001, 2 ** 31]) {
      refuses(() => requireCount("counts[edgevis-camera]", bad), "counts[edgevis-camera]: must be a whole number from 0 to 1000000");
    }
  });
});

describe("requireTimestamp", () => {
  it("returns the instant of a set timestamp", () => {
    const when = new Date("2027-01-31T23:59:59.250Z");
    expect(requireTimestamp("expires_at", timestampFromDate(when))).toEqual(when);
    expect(requireTimestamp("expires_at", timestampFromDate(new Date(0)))).toEqual(new Date(0));
    expect(requireTimestamp("expires_at", timestampFromDate(new Date("9999-12-31T23:59:59Z")))).toEqual(new Date("9999-12-31T23:59:59Z"));
  });

  it("refuses a missing timestamp as required", () => {
    refuses(() => requireTimestamp("expires_at", undefined), "expires_at: is required");
  });

  it("refuses instants before 1970, after 9999, and out of Date range", () => {
    const why = "expires_at: must be a valid instant between 1970 and 9999";
    refuses(() => requireTimestamp("expires_at", timestampFromDate(new Date("1969-12-31T23:59:59Z"))), why);
    refuses(() => requireTimestamp("expires_at", timestampFromDate(new Date("+010000-01-01T00:00:00Z"))), why);
    refuses(() => requireTimestamp("expires_at", create(TimestampSchema, { seconds: 10n ** 15n })), why);
    refuses(() => requireTimestamp("expires_at", create(TimestampSchema, { seconds: -(10n ** 15n) })), why);
  });
});

describe("requireListSize", () => {
  it("accepts lists within bounds", () => {
    const list = [1, 2, 3];
    expect(requireListSize("encoders", list, 3)).toBe(list);
    expect(requireListSize("encoders", [], 3)).toEqual([]);
    expect(requireListSize("encoders", [1], 3, 1)).toEqual([1]);
  });

  it("refuses too many items", () => {
    refuses(() => requireListSize("encoders", [1, 2, 3, 4], 3), "encoders: must have at most 3 items");
  });

  it("refuses too few items, with the right plural", () => {
    refuses(() => requireListSize("encoders", [], 10, 1), "encoders: needs at least 1 item");
    refuses(() => requireListSize("encoders", [1], 10, 2), "encoders: needs at least 2 items");
  });
});

describe("pageSize", () => {
  it("uses the fallback for 0 and accepts 1 to max", () => {
    expect(pageSize("page_size", 0, 50, 500)).toBe(50);
    expect(pageSize("page_size", 1, 50, 500)).toBe(1);
    expect(pageSize("page_size", 500, 50, 500)).toBe(500);
  });

  it("refuses negatives, fractions and more than max", () => {
    for (const bad of [-1, 501, 2.5, Number.NaN]) {
      refuses(() => pageSize("page_size", bad, 50, 500), "page_size: must be from 1 to 500");
    }
  });
});
