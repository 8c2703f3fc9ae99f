import { createContextKey } from "@connectrpc/connect";

/** An enrolled EdgeVis Server, proven by its access token. */
export interface ServerCaller {
  kind: "server";
  serverId: string;
  accountId: string;
}

/** A customer using an API key of their account (SPEC L14). */
export interface CustomerCaller {
  kind: "customer";
  apiKeyId: string;
  accountId: string;
}

/** Who is calling a public RPC; set by the authentication interceptor. */
export type Caller = ServerCaller | CustomerCaller;

/** Where handlers find the authenticated caller. Undefined for the few public RPCs that need none. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });

/** The name revocations are recorded under: `server:<id>` or `apikey:<id>`. */
export function revocationSubject(caller: Caller): string {
  return caller.kind === "server" ? `server:${caller.serverId}` : `apikey:${caller.apiKeyId}`;
}

/** The proven actor of an internal call (staff or service), set by the internal auth interceptor. */
export const internalActorKey = createContextKey<string | undefined>(undefined, { description: "internal caller" });
