import type { HandlerContext } from "@connectrpc/connect";
import { callerKey, type Caller, type CustomerCaller, type ServerCaller } from "@cls/auth";
import { PermissionDeniedError, UnauthenticatedError } from "@cls/errors";

/** The authenticated caller of a public RPC; throws `unauthenticated` when there is none. */
export function requireCaller(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (!caller) throw new UnauthenticatedError("this call needs an access token");
  return caller;
}

/** For calls only an EdgeVis Server makes (register, acquire, check). */
export function requireServerCaller(ctx: HandlerContext): ServerCaller {
  const caller = requireCaller(ctx);
  if (caller.kind !== "server") throw new PermissionDeniedError("this call is made by an enrolled EdgeVis Server, not with an API key");
  return caller;
}

/** For calls only a customer makes with an API key (managing servers). */
export function requireCustomerCaller(ctx: HandlerContext): CustomerCaller {
  const caller = requireCaller(ctx);
  if (caller.kind !== "customer") throw new PermissionDeniedError("this call needs a customer's API key, not a server's credentials");
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

/** How a public caller appears in the audit trail. */
export function callerActor(caller: Caller): string {
  return caller.kind === "server" ? `server:${caller.serverId}` : `customer:${caller.apiKeyId}`;
}
