import type { Interceptor } from "@connectrpc/connect";
import { internalActorKey } from "@cls/auth";

/**
 * For service tests that call a module's internal API in memory: takes the actor from an
 * `x-cls-actor` header, standing in for the credential the internal port verifies (which
 * libs/server's tests and the end-to-end tests cover).
 */
export function actorFromTestHeader(): Interceptor {
  return (next) => (req) => {
    const actor = req.header.get("x-cls-actor");
    if (actor) req.contextValues.set(internalActorKey, actor);
    return next(req);
  };
}
