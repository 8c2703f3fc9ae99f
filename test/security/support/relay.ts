import net, { type AddressInfo } from "node:net";

/** A TCP relay whose outgoing connections start from a chosen local address. */
export interface Relay {
  /** https://localhost:<port>, so TLS, host-name checks and pins work end to end through it. */
  url: string;
  /** The local addresses the relay's outgoing connections really had. */
  outgoingLocalAddresses: string[];
  close(): Promise<void>;
}

/**
 * Makes every client of CLS connect from `fromAddress` (e.g. 127.0.0.2): clients connect to the
 * relay on 127.0.0.1, and the relay opens each onward connection bound to `fromAddress`. Bytes
 * pass through untouched (TLS is end to end), so a client library that cannot choose its
 * source address still talks to CLS from the distinctive one.
 */
export async function startRelay(options: { targetUrl: string; fromAddress: string }): Promise<Relay> {
  const target = new URL(options.targetUrl);
  const outgoingLocalAddresses: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((incoming) => {
    const outgoing = net.connect({ host: "127.0.0.1", port: Number(target.port), localAddress: options.fromAddress });
    sockets.add(incoming).add(outgoing);
    outgoing.once("connect", () => outgoingLocalAddresses.push(String(outgoing.localAddress)));
    incoming.pipe(outgoing).pipe(incoming);
    const end = () => {
      incoming.destroy();
      outgoing.destroy();
      sockets.delete(incoming);
      sockets.delete(outgoing);
    };
    incoming.on("error", end).on("close", end);
    outgoing.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    outgoingLocalAddresses,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
