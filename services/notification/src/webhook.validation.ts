import { isIP } from "node:net";
import { InvalidArgumentError } from "@cls/errors";
import { requireListSize } from "@cls/validation";
import { requireEventType } from "./event.validation.js";

/** Longest webhook URL accepted, in characters. */
export const MAX_WEBHOOK_URL_LENGTH = 2000;
/** Most event types one webhook may name. */
export const MAX_WEBHOOK_EVENT_TYPES = 32;

/** Host names that only ever name this machine or a private network. */
function isPrivateHostName(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal") || !host.includes(".");
}

/**
 * A webhook target (SPEC L15): `https:` with a host name. An IP literal (v4 or v6, in any of
 * the spellings URL parsing normalises, such as `http://2130706433/`) is refused, so no
 * address is ever stored (SPEC L13), and so are names of this machine or a private network
 * (`localhost`, `*.local`, `*.internal`, single-label names), to limit SSRF. With
 * `allowPrivateTargets` (development and tests) those names and `http:` are accepted; IP
 * literals never are. Returns the normalised URL, without a fragment.
 */
export function requireWebhookUrl(field: string, value: string, allowPrivateTargets: boolean): string {
  if (value === "") throw new InvalidArgumentError(field, "is required");
  if (value.length > MAX_WEBHOOK_URL_LENGTH) throw new InvalidArgumentError(field, `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(field, "must be an absolute URL such as https://hooks.example.com/cls");
  }
  if (url.protocol !== "https:" && !(allowPrivateTargets && url.protocol === "http:")) {
    throw new InvalidArgumentError(field, "must use https");
  }
  if (url.username !== "" || url.password !== "") throw new InvalidArgumentError(field, "must not contain a user name or password");
  const host = url.hostname.replace(/\.$/, "");
  if (host === "") throw new InvalidArgumentError(field, "must name a host");
  if (host.startsWith("[") || isIP(host) !== 0) throw new InvalidArgumentError(field, "must name a host, not an IP address");
  if (!allowPrivateTargets && isPrivateHostName(host)) {
    throw new InvalidArgumentError(field, "must name a public host, not localhost or a private network name");
  }
  url.hash = "";
  const normalised = url.href;
  if (normalised.length > MAX_WEBHOOK_URL_LENGTH) throw new InvalidArgumentError(field, `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`);
  return normalised;
}

/** The event types a webhook receives: each a valid type, duplicates dropped; empty means all. */
export function requireWebhookEventTypes(field: string, values: readonly string[]): string[] {
  requireListSize(field, values, MAX_WEBHOOK_EVENT_TYPES);
  const types = values.map((value, index) => requireEventType(`${field}[${index}]`, value));
  return [...new Set(types)];
}
