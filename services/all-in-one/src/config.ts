import { readConfig, serviceBaseShape, z } from "@cls/config";

/** The all-in-one process's environment, read once. Without DATABASE_URL it runs on embedded PGlite. */
export function readAllInOneConfig(env: Record<string, string | undefined> = process.env) {
  return readConfig(
    {
      ...serviceBaseShape,
      /** Where the embedded database, keys and self-signed certificate are kept across restarts. */
      CLS_DATA_DIR: z.string().default(".cls-data"),
      /** Ed25519 PKCS#8 PEM that signs leases; made in CLS_DATA_DIR when unset. */
      LEASE_SIGNING_KEY_FILE: z.string().optional(),
      /** Ed25519 PKCS#8 PEM that signs access tokens; made in CLS_DATA_DIR when unset. */
      TOKEN_SIGNING_KEY_FILE: z.string().optional(),
      /** Development only: let webhooks target http:, localhost and private networks. */
      WEBHOOK_ALLOW_PRIVATE_TARGETS: z.enum(["true", "false"]).default("false").transform((value) => value === "true"),
      /** Interface the ports listen on. */
      LISTEN_HOST: z.string().default("127.0.0.1"),
    },
    env,
  );
}
