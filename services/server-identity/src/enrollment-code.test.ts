import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ClsError } from "@cls/errors";
import { hashEnrollmentCode, newEnrollmentCode, parseEnrollmentCode } from "./enrollment-code.js";

describe("enrollment codes (SPEC L11)", () => {
  it("are 25 base32 characters in five groups of five", () => {
    const code = newEnrollmentCode();
    expect(code).toMatch(/^[A-Z2-7]{5}(-[A-Z2-7]{5}){4}$/);
    expect(newEnrollmentCode()).not.toBe(code);
  });

  it("accept what a person types: any case, with or without dashes and spaces", () => {
    const code = newEnrollmentCode();
    const typed = ` ${code.toLowerCase().replaceAll("-", " ")} `;
    expect(parseEnrollmentCode("enrollment_code", typed)).toBe(code);
    expect(parseEnrollmentCode("enrollment_code", code.replaceAll("-", ""))).toBe(code);
    expect(hashEnrollmentCode(parseEnrollmentCode("enrollment_code", typed))).toBe(hashEnrollmentCode(code));
  });

  it.each(["", "ABCDE-FGHIJ", "ABCDE-FGHIJ-KLMNO-PQRST-UVWX1", "ABCDE-FGHIJ-KLMNO-PQRST-UVWXYZ"])(
    "refuse %j with invalid_argument naming the field",
    (input) => {
      let caught: unknown;
      try {
        parseEnrollmentCode("enrollment_code", input);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ClsError);
      expect((caught as ClsError).code).toBe(Code.InvalidArgument);
      expect((caught as ClsError).message).toMatch(/^enrollment_code: /);
    },
  );

  it("are stored as a SHA-256 hex digest, never as themselves", () => {
    const code = newEnrollmentCode();
    const hash = hashEnrollmentCode(code);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(code);
  });
});
