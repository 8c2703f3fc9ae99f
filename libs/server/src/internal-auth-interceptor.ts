import type { Interceptor } from "@connectrpc/connect";
import { internalActorKey, type InternalVerifier } from "@cls/auth";
import { UnauthenticatedError } from "@cls/errors";
import { Health } from "@cls/proto";

/** Every internal call but health checks carries a staff or service credential. */
export function internalAuthInterceptor(verifier: InternalVerifier): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    const match = /^Bearer ([A-Za-z0-9._-]+)$/.exec(req.header.get("authorization") ?? "");
    if (!match?.[1]) throw new UnauthenticatedError("internal calls need 'authorization: Bearer <staff or service credential>'");
    req.contextValues.set(internalActorKey, await verifier.verify(match[1]));
    return next(req);
  };
}
