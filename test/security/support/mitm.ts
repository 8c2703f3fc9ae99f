import type { AddressInfo } from "node:net";
import tls from "node:tls";
import type { TlsMaterial } from "@cls/server";

/** What a man in the middle managed to see. */
export interface MitmProxy {
  url: string;
  /** TCP connections clients opened to the proxy. */
  connections(): number;
  /** TLS handshakes clients completed with the proxy's certificate. */
  handshakes(): number;
  /** Decrypted bytes clients sent through the proxy: what the attacker reads. */
  plaintext(): Buffer;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A TLS-terminating man in the middle for `localhost`: it presents its own certificate (which the
 * test makes the client trust, so that only pinning can protect it), decrypts what the client
 * sends, records it, and relays it to the real CLS over a second TLS connection.
 */
export async function startMitmProxy(options: { own: TlsMaterial; upstreamUrl: string; upstreamCa: string }): Promise<MitmProxy> {
  const upstream = new URL(options.upstreamUrl);
  let connections = 0;
  let handshakes = 0;
  let seen: Buffer[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: options.own.cert, key: options.own.key, ALPNProtocols: ["h2", "http/1.1"] }, (client) => {
    handshakes++;
    sockets.add(client);
    const onward = tls.connect({
      host: "127.0.0.1",
      port: Number(upstream.port),
      servername: upstream.hostname,
      ca: options.upstreamCa,
      ALPNProtocols: [client.alpnProtocol || "h2"],
    });
    sockets.add(onward);
    client.on("data", (chunk: Buffer) => seen.push(Buffer.from(chunk)));
    client.pipe(onward).pipe(client);
    const end = () => {
      client.destroy();
      onward.destroy();
    };
    client.on("error", end).on("close", end);
    onward.on("error", end).on("close", end);
  });
  server.on("connection", () => connections++);
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    handshakes: () => handshakes,
    plaintext: () => Buffer.concat(seen),
    reset() {
      connections = 0;
      handshakes = 0;
      seen = [];
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
