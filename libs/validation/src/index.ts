import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "@cls/errors";

/** Longest id, name or other free text CLS accepts in a field. */
export const MAX_TEXT_LENGTH = 200;

const ID_PATTERN = /^[a-z]+_[0-9a-f]{32}$/;
// Ids chosen by EdgeVis Servers (encoders, cameras): printable ASCII, no spaces.
const EXTERNAL_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
const SLUG_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A CLS-made id with the expected prefix, e.g. `pool_…`. */
export function requireId(field: string, value: string, prefix: string): string {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (!ID_PATTERN.test(value) || !value.startsWith(`${prefix}_`)) {
    throw new InvalidArgumentError(field, `must be a ${prefix}_ id`);
  }
  return value;
}

/** An id chosen by an EdgeVis Server: 1 to 128 printable ASCII characters without spaces. */
export function requireExternalId(field: string, value: string): string {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (!EXTERNAL_ID_PATTERN.test(value)) {
    throw new InvalidArgumentError(field, "must be 1 to 128 printable ASCII characters without spaces");
  }
  return value;
}

/** A lowercase identifier such as a licence type (`edgevis-camera`) or a model. */
export function requireSlug(field: string, value: string): string {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (!SLUG_PATTERN.test(value)) {
    throw new InvalidArgumentError(field, "must be 1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit");
  }
  return value;
}

/** Human text: required, trimmed, at most MAX_TEXT_LENGTH characters, no control characters. */
export function requireText(field: string, value: string, options: { optional?: boolean } = {}): string {
  const trimmed = value.trim();
  if (trimmed === "") {
    if (options.optional) return "";
    throw new InvalidArgumentError(field, "is required");
  }
  if (trimmed.length > MAX_TEXT_LENGTH) throw new InvalidArgumentError(field, `must be at most ${MAX_TEXT_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(trimmed)) throw new InvalidArgumentError(field, "must not contain control characters");
  return trimmed;
}

/** A licence count: a whole number from 0 to 1,000,000. */
export function requireCount(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 1_000_000) {
    throw new InvalidArgumentError(field, "must be a whole number from 0 to 1000000");
  }
  return value;
}

/** A timestamp that must be set. */
export function requireTimestamp(field: string, value: Timestamp | undefined): Date {
  if (!value) throw new InvalidArgumentError(field, "is required");
  const date = timestampDate(value);
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999 || date.getUTCFullYear() < 1970) {
    throw new InvalidArgumentError(field, "must be a valid instant between 1970 and 9999");
  }
  return date;
}

/** A bounded list. */
export function requireListSize<T>(field: string, values: readonly T[], max: number, min = 0): readonly T[] {
  if (values.length < min) throw new InvalidArgumentError(field, `needs at least ${min} item${min === 1 ? "" : "s"}`);
  if (values.length > max) throw new InvalidArgumentError(field, `must have at most ${max} items`);
  return values;
}

/** A page size: 0 means the default; larger than max is refused. */
export function pageSize(field: string, value: number, fallback: number, max: number): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max) throw new InvalidArgumentError(field, `must be from 1 to ${max}`);
  return value;
}
