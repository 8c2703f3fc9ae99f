import { createHash, randomBytes } from "node:crypto";
import { InvalidArgumentError } from "@cls/errors";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LENGTH = 25;
const GROUP = 5;

function grouped(chars: string): string {
  return chars.match(new RegExp(`.{${GROUP}}`, "g"))!.join("-");
}

/** A new one-time code: 25 base32 characters (125 random bits) shown as `ABCDE-FGHIJ-…`. */
export function newEnrollmentCode(): string {
  // 256 is a multiple of 32, so masking each byte keeps every character equally likely.
  const chars = [...randomBytes(LENGTH)].map((byte) => ALPHABET[byte & 31]).join("");
  return grouped(chars);
}

/**
 * The canonical form of a code a person typed: case, spaces and dashes do not matter.
 * Throws invalid_argument when it cannot be a code at all.
 */
export function parseEnrollmentCode(field: string, input: string): string {
  if (input.trim() === "") throw new InvalidArgumentError(field, "is required");
  const chars = input.toUpperCase().replace(/[\s-]/g, "");
  if (chars.length !== LENGTH || ![...chars].every((char) => ALPHABET.includes(char))) {
    throw new InvalidArgumentError(field, "must be 25 letters A-Z and digits 2-7 in groups of five, e.g. ABCDE-FGHIJ-KLMNO-PQRST-UVWXY");
  }
  return grouped(chars);
}

/** What is stored instead of the code. */
export function hashEnrollmentCode(canonicalCode: string): string {
  return createHash("sha256").update(canonicalCode).digest("hex");
}
