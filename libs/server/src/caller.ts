import type { HandlerContext } from "@connectrpc/connect";
import { callerKey, internalActorKey, type Caller, type CustomerCaller, type ServerCaller } from "@cls/auth";
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

/**
 * Who made an internal call, for the audit trail (SPEC L16): the actor its credential proved,
 * e.g. `staff:alice@vendor.example` or `service:pool`. Calls within one process, which cross
 * no network, are made by the service itself.
 */
export function actorOf(ctx: HandlerContext): string {
  return ctx.values.get(internalActorKey) ?? "service:in-process";
}

/** How a public caller appears in the audit trail. */
export function callerActor(caller: Caller): string {
  return caller.kind === "server" ? `server:${caller.serverId}` : `customer:${caller.apiKeyId}`;
}
