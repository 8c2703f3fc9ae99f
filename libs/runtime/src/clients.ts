import type { DescService } from "@bufbuild/protobuf";
import { createClient, createRouterTransport, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { InternalSigner } from "@cls/auth";
import { telemetryInterceptor, tracingClientInterceptor, type ServiceBinding } from "@cls/server";

/** A client for another service's internal gRPC port, proving this service's identity on every call. */
export function internalGrpcClient<S extends DescService>(service: S, baseUrl: string, signer: InternalSigner): Client<S> {
  const identify: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${await signer.token()}`);
    return next(req);
  };
  return createClient(service, createGrpcTransport({ baseUrl, interceptors: [tracingClientInterceptor(), identify], defaultTimeoutMs: 10_000 }));
}

/** A client that calls another service's implementation in the same process, without a network hop. */
export function inProcessClient<S extends DescService>(service: S, binding: ServiceBinding, interceptors: Interceptor[] = []): Client<S> {
  if (binding.service.typeName !== service.typeName) {
    throw new Error(`binding is ${binding.service.typeName}, not ${service.typeName}`);
  }
  const transport = createRouterTransport((router) => router.service(binding.service, binding.impl), {
    transport: { interceptors: [tracingClientInterceptor()] },
    router: { interceptors: [telemetryInterceptor(), ...interceptors] },
  });
  return createClient(service, transport);
}

/**
 * A client whose service is supplied later: lets the all-in-one process wire services
 * that call each other without caring about construction order.
 */
export function lateBoundClient<S extends DescService>(service: S): { client: Client<S>; bind(target: Client<S>): void } {
  let target: Client<S> | undefined;
  const client = new Proxy({} as Client<S>, {
    get(_object, method: string) {
      return (...args: unknown[]) => {
        if (!target) throw new Error(`${service.typeName} is not wired yet`);
        return (target as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
      };
    },
  });
  return { client, bind: (value) => (target = value) };
}
