import type { Interceptor } from "@connectrpc/connect";
import { callerKey, type TokenVerifier } from "@cls/auth";
import { UnauthenticatedError } from "@cls/errors";
import { Health } from "@cls/proto";

/**
 * Verifies the bearer access token of every public call except the named anonymous
 * methods (enrollment, the challenge exchange, health) and records the caller.
 */
export function authInterceptor(verifier: TokenVerifier, anonymousMethods: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    if (anonymousMethods.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
    const header = req.header.get("authorization");
    if (!header) throw new UnauthenticatedError("missing authorization header: send 'Bearer <access token>'");
    const match = /^Bearer ([A-Za-z0-9._-]+)$/.exec(header);
    if (!match?.[1]) throw new UnauthenticatedError("malformed authorization header: expected 'Bearer <access token>'");
    req.contextValues.set(callerKey, await verifier.verify(match[1]));
    return next(req);
  };
}
