import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Lowest port the suite picks from; the top is the start of the kernel's ephemeral range. */
const LOWEST_PORT = 10_000;

/** The first port the kernel hands out for outgoing connections and `listen(0)`. */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    const port = Number(low);
    return Number.isInteger(port) && port > LOWEST_PORT + 1_000 ? port : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on 127.0.0.1 a moment ago, chosen below the ephemeral range. Replicas are
 * killed and restarted on their ports; a port from the ephemeral range could meanwhile
 * become the local end of some outgoing connection, and the restart would fail to listen.
 */
export async function freePort(): Promise<number> {
  const top = ephemeralRangeStart();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * (top - LOWEST_PORT));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port between ${LOWEST_PORT} and ${top}`);
}

/** Several distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
