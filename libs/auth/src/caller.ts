import { createContextKey } from "@connectrpc/connect";

/** An enrolled EdgeVis Server, proven by its access token. */
export interface ServerCaller {
  kind: "server";
  serverId: string;
  accountId: string;
}

/** Who is calling a public RPC; set by the authentication interceptor. */
export type Caller = ServerCaller;

/** Where handlers find the authenticated caller. Undefined for the few public RPCs that need none. */
export const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });
