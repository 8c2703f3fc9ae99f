import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { TokenIssuer } from "@cls/auth";
import { newId } from "@cls/db";
import { AllocationAdminService, AllocationService, EncoderKind } from "@cls/proto";
import { createVendorClient } from "@cls/vendor-client";

export const LICENCE_TYPE = "edgevis-camera";
const MODEL = "fault-cam";

/** One camera of an EdgeVis Server, the unit a licence is held for. */
export interface Camera {
  /** server/encoder/camera: the idempotency key (SPEC L7). */
  key: string;
  poolId: string;
  serverId: string;
  encoderId: string;
  cameraId: string;
  /** Bearer access token of its server. */
  token: string;
}

export interface Fleet {
  accountId: string;
  pools: { poolId: string; capacity: number }[];
  cameras: Camera[];
}

export interface FleetShape {
  /** Licences bought per pool (one pool per entry). */
  capacities: number[];
  serversPerPool: number;
  camerasPerServer: number;
}

/**
 * Seeds what the pool and identity services would push (a model, pools with small counts,
 * bound servers) through a replica's internal AllocationAdminService, then registers one
 * v9 encoder per server over the public Connect API, as an EdgeVis Server does.
 */
export async function seedFleet(options: {
  internalUrl: string;
  publicUrl: string;
  ca: string;
  tokens: TokenIssuer;
  /** A vendor staff identity the replicas trust on their internal port. */
  staff: { actor: string; privateKeyPem: string };
  shape: FleetShape;
}): Promise<Fleet> {
  const admin = createVendorClient(AllocationAdminService, options.internalUrl, options.staff);
  const allocation = createClient(AllocationService, createConnectTransport({ baseUrl: options.publicUrl, httpVersion: "2", nodeOptions: { ca: options.ca } }));
  try {
    const accountId = newId("acc");
    await admin.applyEncoderModel({ model: { model: MODEL, licenceType: LICENCE_TYPE, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
    const pools: Fleet["pools"] = [];
    const cameras: Camera[] = [];
    for (const capacity of options.shape.capacities) {
      const poolId = newId("pool");
      await admin.applyEntitlement({
        poolId,
        accountId,
        expiresAt: timestampFromDate(new Date(Date.now() + 365 * 24 * 3600 * 1000)),
        counts: { [LICENCE_TYPE]: capacity },
        version: 1n,
      });
      pools.push({ poolId, capacity });
      for (let s = 0; s < options.shape.serversPerPool; s++) {
        const serverId = newId("srv");
        await admin.bindServer({ serverId, accountId, poolId });
        const { token } = await options.tokens.issueServerToken(serverId, accountId);
        const encoderId = `enc-${pools.length}-${s}`;
        await allocation.registerEncoder({ encoderId, model: MODEL, firmwareVersion: "9.3" }, { headers: { authorization: `Bearer ${token}` } });
        for (let c = 0; c < options.shape.camerasPerServer; c++) {
          const cameraId = `cam-${c}`;
          cameras.push({ key: `${serverId}/${encoderId}/${cameraId}`, poolId, serverId, encoderId, cameraId, token });
        }
      }
    }
    return { accountId, pools, cameras };
  } finally {
    admin.close();
  }
}
