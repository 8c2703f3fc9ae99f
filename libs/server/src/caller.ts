import type { HandlerContext } from "@connectrpc/connect";
import { callerKey, type Caller } from "@cls/auth";
import { UnauthenticatedError } from "@cls/errors";

/** The authenticated caller of a public RPC; throws `unauthenticated` when there is none. */
export function requireCaller(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw new UnauthenticatedError("this call needs an access token");
  return caller;
}

const ACTOR_PATTERN = /^[a-z]+:[\x21-\x7e]{1,100}$/;

/**
 * Who made an internal call, for the audit trail (SPEC L16): the `x-cls-actor` header,
 * e.g. `staff:alice@example.com` or `service:pool`.
 */
export function actorOf(ctx: HandlerContext): string {
  const actor = ctx.requestHeader.get("x-cls-actor");
  return actor && ACTOR_PATTERN.test(actor) ? actor : "staff:unidentified";
}
