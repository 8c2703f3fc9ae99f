import { fromBinary, toBinary, create, type DescMethodUnary, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createInternalSigner } from "@cls/auth";

type UnaryMethods<S extends DescService> = {
  [K in keyof S["method"] as S["method"][K] extends DescMethodUnary ? K : never]: S["method"][K];
};

/** A promise-returning method per unary RPC of the service. */
export type VendorClient<S extends DescService> = {
  [K in keyof UnaryMethods<S>]: UnaryMethods<S>[K] extends DescMethodUnary<infer I, infer O>
    ? (request: MessageInitShape<I>) => Promise<MessageShape<O>>
    : never;
} & { close(): void };

export interface VendorClientOptions {
  /** Who is calling, recorded in the audit trail, e.g. `staff:alice@example.com`. */
  actor: string;
  /** The caller's Ed25519 PKCS#8 PEM, whose public key CLS trusts for `actor`. */
  privateKeyPem: string;
  deadlineMs?: number;
}

/**
 * A real gRPC client (@grpc/grpc-js, not Connect) for an internal CLS service at
 * `host:port`. Errors are grpc-js ServiceErrors with `code` set to the gRPC status.
 */
export function createVendorClient<S extends DescService>(service: S, address: string, options: VendorClientOptions): VendorClient<S> {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (message) => Buffer.from(toBinary(method.input, message as MessageShape<typeof method.input>)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message) => Buffer.from(toBinary(method.output, message as MessageShape<typeof method.output>)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  const Constructor = grpc.makeGenericClientConstructor(definition, service.typeName);
  const client = new Constructor(address.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
  const signer = createInternalSigner(options.actor, options.privateKeyPem);
  const calls: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    calls[method.localName] = async (request: MessageInitShape<typeof method.input>) => {
      const credential = await signer.token();
      return new Promise((resolve, reject) => {
        const metadata = new grpc.Metadata();
        metadata.set("authorization", `Bearer ${credential}`);
        const deadline = new Date(Date.now() + (options.deadlineMs ?? 10_000));
        const fn = (client as unknown as Record<string, Function>)[method.localName]!;
        fn.call(client, create(method.input, request), metadata, { deadline }, (error: grpc.ServiceError | null, response: unknown) =>
          error ? reject(withReadableMessage(error)) : resolve(response),
        );
      });
    };
  }
  return calls as VendorClient<S>;
}

/**
 * CLS percent-encodes grpc-message as the gRPC spec allows; grpc-js decodes it only
 * partially (decodeURI), leaving e.g. "%3A" for ":". Decode it fully for people to read.
 */
function withReadableMessage(error: grpc.ServiceError): grpc.ServiceError {
  try {
    const details = decodeURIComponent(error.details);
    error.details = details;
    error.message = `${error.code} ${grpc.status[error.code]}: ${details}`;
  } catch {
    // Not percent-encoded after all: keep it as it came.
  }
  return error;
}

export { status as GrpcStatus } from "@grpc/grpc-js";
