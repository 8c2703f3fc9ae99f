import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { NotificationAdminService } from "@cls/proto";

/**
 * Stands in for the notification service: accepts the allocation replicas' outbox deliveries
 * (events don't matter to the fault suite) so the relays stay quiet.
 */
export interface NotificationSink {
  readonly url: string;
  accepted(): number;
  close(): Promise<void>;
}

export async function startNotificationSink(): Promise<NotificationSink> {
  let accepted = 0;
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(NotificationAdminService, {
        ingestEvents(req) {
          accepted += req.events.length;
          return { accepted: req.events.length };
        },
      }),
  });
  const server = http2.createServer({}, handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    async close() {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
