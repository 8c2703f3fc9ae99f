import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { callerKey, revocationSubject, type Caller, type RevocationList, type TokenVerifier } from "@cls/auth";
import { PermissionDeniedError, UnauthenticatedError } from "@cls/errors";
import { Health } from "@cls/proto";

/**
 * Verifies the bearer access token of every public call except the named anonymous
 * methods (enrollment, the challenge exchange, health) and records the caller.
 */
export function authInterceptor(
  verifier: TokenVerifier,
  anonymousMethods: ReadonlySet<string>,
  revocations?: RevocationList,
  logger?: Logger,
): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    if (anonymousMethods.has(`${req.service.typeName}/${req.method.name}`)) return next(req);
    const header = req.header.get("authorization");
    if (!header) throw new UnauthenticatedError("missing authorization header: send 'Bearer <access token>'");
    const match = /^Bearer ([A-Za-z0-9._-]+)$/.exec(header);
    if (!match?.[1]) throw new UnauthenticatedError("malformed authorization header: expected 'Bearer <access token>'");
    const caller = await verifier.verify(match[1]);
    if (revocations && (await isRevoked(revocations, caller, logger))) {
      throw new PermissionDeniedError(caller.kind === "server" ? "this server has been revoked" : "this API key has been revoked");
    }
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}

/**
 * With the revocation store unreachable the check lets the call through: tokens live only
 * minutes, and the allocation service also checks each server's state in Postgres.
 */
async function isRevoked(revocations: RevocationList, caller: Caller, logger: Logger | undefined): Promise<boolean> {
  try {
    return await revocations.isRevoked(revocationSubject(caller));
  } catch (error) {
    logger?.warn({ err: error }, "revocation store unavailable; relying on token expiry");
    return false;
  }
}
