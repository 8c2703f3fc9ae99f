/**
 * What the benchmark runs against, set up the way CLS is fed in production: the vendor side
 * through the internal gRPC AllocationAdminService (catalogue, entitlements, server
 * bindings — what the pool and identity services push), the EdgeVis side through the public
 * Connect API (RegisterEncoder, AcquireLicence) with access tokens.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { TokenIssuer } from "@cls/auth";
import { newId } from "@cls/db";
import {
  AcquireLicenceRequestSchema,
  AllocationAdminService,
  CheckEncodersRequestSchema,
  EncoderKind,
  RegisterEncoderRequestSchema,
} from "@cls/proto";
import { createVendorClient } from "@cls/vendor-client";
import { ACQUIRE_PATH, errorMessageOf, openSession, REGISTER_PATH, unary } from "./h2.js";
import type { AcquireTarget } from "./load-generator.js";

export const LICENCE_TYPE = "edgevis-camera";
export const MODEL = "hd-ip200";
export const FIRMWARE = "9.3.0";
/** Largest count an entitlement may carry (libs/validation requireCount). */
export const POOL_CAPACITY = 1_000_000;

export interface SeedPlan {
  spreadPools: number;
  hotServers: number;
  dailyServers: number;
  encodersPerBatch: number;
  camerasPerEncoder: number;
}

export interface DailyServer {
  serverId: string;
  token: string;
  /** The binary CheckEncodersRequest naming all of this server's encoders. */
  body: Uint8Array;
}

export interface Fixture {
  accountId: string;
  /** One server per pool, each with one registered encoder: a call picks a pool at random. */
  spread: AcquireTarget[];
  spreadPoolIds: string[];
  /** Servers sharing the one hot pool, one per concurrent caller. */
  hot: AcquireTarget[];
  hotPoolId: string;
  daily: DailyServer[];
  dailyPoolId: string;
  allPoolIds: string[];
}

async function inParallel<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

export async function seed(options: {
  internalUrl: string;
  publicUrl: string;
  caPem: string;
  tokens: TokenIssuer;
  /** The vendor-tool identity the service trusts on its internal port. */
  staff: { actor: string; privateKeyPem: string };
  plan: SeedPlan;
}): Promise<Fixture> {
  const { plan, tokens } = options;
  const vendor = createVendorClient(AllocationAdminService, options.internalUrl, { ...options.staff, deadlineMs: 30_000 });
  const sessions = await Promise.all(Array.from({ length: 8 }, () => openSession(options.publicUrl, options.caPem)));
  try {
    const accountId = newId("acc");
    const expiresAt = timestampFromDate(new Date(Date.now() + 365 * 24 * 3600 * 1000));
    await vendor.applyEncoderModel({ model: { model: MODEL, licenceType: LICENCE_TYPE, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });

    const spreadPoolIds = Array.from({ length: plan.spreadPools }, () => newId("pool"));
    const hotPoolId = newId("pool");
    const dailyPoolId = newId("pool");
    const allPoolIds = [...spreadPoolIds, hotPoolId, dailyPoolId];
    await inParallel(allPoolIds, 16, async (poolId) => {
      await vendor.applyEntitlement({ poolId, accountId, expiresAt, counts: { [LICENCE_TYPE]: POOL_CAPACITY }, version: 1n });
    });

    interface Server {
      serverId: string;
      poolId: string;
      token: string;
      encoderIds: string[];
    }
    const servers: Server[] = [];
    const addServer = (poolId: string, encoders: number) => {
      const server = { serverId: newId("srv"), poolId, token: "", encoderIds: Array.from({ length: encoders }, (_, i) => `enc-${String(i).padStart(4, "0")}`) };
      servers.push(server);
      return server;
    };
    const spreadServers = spreadPoolIds.map((poolId) => addServer(poolId, 1));
    const hotServers = Array.from({ length: plan.hotServers }, () => addServer(hotPoolId, 1));
    const dailyServers = Array.from({ length: plan.dailyServers }, () => addServer(dailyPoolId, plan.encodersPerBatch));
    await inParallel(servers, 16, async (server) => {
      await vendor.bindServer({ serverId: server.serverId, accountId, poolId: server.poolId });
      server.token = (await tokens.issueServerToken(server.serverId, accountId)).token;
    });

    // Every server's encoders, registered over the public API as an EdgeVis Server does.
    const registrations = servers.flatMap((server) => server.encoderIds.map((encoderId) => ({ server, encoderId })));
    await inParallel(registrations, 32, async ({ server, encoderId }, i) => {
      const body = toBinary(RegisterEncoderRequestSchema, create(RegisterEncoderRequestSchema, { encoderId, model: MODEL, firmwareVersion: FIRMWARE }));
      const answer = await unary(sessions[i % sessions.length]!, REGISTER_PATH, body, server.token);
      if (answer.status !== 200) throw new Error(`RegisterEncoder ${encoderId}: ${answer.status} ${errorMessageOf(answer)}`);
    });

    // The daily-check servers' cameras hold licences, so each check renews (and signs) them.
    const cameras = dailyServers.flatMap((server) =>
      server.encoderIds.flatMap((encoderId) => Array.from({ length: plan.camerasPerEncoder }, (_, c) => ({ server, encoderId, cameraId: `${encoderId}-cam-${c}` }))),
    );
    await inParallel(cameras, 32, async ({ server, encoderId, cameraId }, i) => {
      const body = toBinary(AcquireLicenceRequestSchema, create(AcquireLicenceRequestSchema, { encoderId, cameraId }));
      const answer = await unary(sessions[i % sessions.length]!, ACQUIRE_PATH, body, server.token);
      if (answer.status !== 200) throw new Error(`AcquireLicence ${encoderId}/${cameraId}: ${answer.status} ${errorMessageOf(answer)}`);
    });

    return {
      accountId,
      spread: spreadServers.map((s) => ({ token: s.token, encoderId: s.encoderIds[0]! })),
      spreadPoolIds,
      hot: hotServers.map((s) => ({ token: s.token, encoderId: s.encoderIds[0]! })),
      hotPoolId,
      daily: dailyServers.map((s) => ({
        serverId: s.serverId,
        token: s.token,
        body: toBinary(
          CheckEncodersRequestSchema,
          create(CheckEncodersRequestSchema, { encoders: s.encoderIds.map((encoderId) => ({ encoderId, firmwareVersion: FIRMWARE })) }),
        ),
      })),
      dailyPoolId,
      allPoolIds,
    };
  } finally {
    for (const session of sessions) session.close();
    vendor.close();
  }
}
