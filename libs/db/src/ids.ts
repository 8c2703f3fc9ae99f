import { randomUUID } from "node:crypto";

/** A new opaque id such as `pool_3f2c…`: the prefix says what it names. */
export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "")}`;
}
