import { randomBytes } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EdgeVisClient } from "@cls/edgevis-client";
import { EncoderKind, NotificationService } from "@cls/proto";
import type { TestMesh } from "../../support/mesh.js";
import { publicClients, type PublicClients } from "./public-api.js";

export const LICENCE_TYPE = "edgevis-camera";
export const MODEL = "hd-ip200";

/** What a test needs of a running CLS to set up customers. */
export type Mesh = Pick<TestMesh, "vendor" | "clock" | "edgeVisServer" | "publicUrl" | "tls">;

/**
 * One customer account with everything the public API can name: two pools, an enrolled server
 * with a v9 encoder whose cameras hold licences and a v8 encoder with a legacy licence, a used
 * enrollment code, an API key and access tokens for both kinds of caller. Every name and id is
 * distinctive, so that any of them turning up in another customer's answers is a leak.
 */
export interface Tenant {
  label: string;
  accountId: string;
  accountName: string;
  poolId: string;
  poolName: string;
  /** A second pool of the same account (a valid SwitchPool target for this tenant only). */
  otherPoolId: string;
  otherPoolName: string;
  serverId: string;
  serverName: string;
  encoderId: string;
  legacyEncoderId: string;
  cameraIds: string[];
  allocationIds: string[];
  usedEnrollmentCode: string;
  apiKeyId: string;
  apiKeyName: string;
  /** A webhook of the account's (when asked for and the API has webhooks), on a host that never resolves. */
  webhookId?: string;
  webhookUrl?: string;
  /** The full `cls_<key id>_<secret>` string. */
  apiKey: string;
  server: EdgeVisClient;
  serverToken: string;
  customerToken: string;
  /** Public clients calling as the tenant's server and as the tenant's customer. */
  asServer: PublicClients;
  asCustomer: PublicClients;
}

export async function ensureCatalogue(t: Mesh): Promise<void> {
  const { licenceTypes } = await t.vendor.pools.listLicenceTypes({});
  if (!licenceTypes.some((type) => type.licenceType === LICENCE_TYPE)) {
    await t.vendor.pools.createLicenceType({ licenceType: LICENCE_TYPE, description: "One camera on a v9 encoder" });
  }
  await t.vendor.pools.putEncoderModel({ model: { model: MODEL, licenceType: LICENCE_TYPE, kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
}

export async function seedTenant(t: Mesh, label: string, options: { count?: number; cameras?: number; webhook?: boolean } = {}): Promise<Tenant> {
  await ensureCatalogue(t);
  const tag = randomBytes(4).toString("hex");
  const accountName = `${label} Holdings ${tag}`;
  const { account } = await t.vendor.pools.createAccount({ name: accountName });
  const accountId = account!.accountId;
  const expiresAt = timestampFromDate(new Date(t.clock.now().getTime() + 365 * 24 * 3600 * 1000));
  const poolName = `${label}-pool-${tag}`;
  const otherPoolName = `${label}-spare-pool-${tag}`;
  const { pool } = await t.vendor.pools.createPool({ accountId, name: poolName, expiresAt, counts: { [LICENCE_TYPE]: options.count ?? 5 } });
  const { pool: otherPool } = await t.vendor.pools.createPool({ accountId, name: otherPoolName, expiresAt, counts: { [LICENCE_TYPE]: options.count ?? 5 } });

  const { enrollmentCode } = await t.vendor.identity.createEnrollmentCode({ accountId, poolId: pool!.poolId });
  const server = t.edgeVisServer();
  const serverName = `${label}-site-${tag}`;
  const identity = await server.enroll(enrollmentCode, serverName);

  const encoderId = `${label}-enc-${tag}`;
  const legacyEncoderId = `${label}-legacy-enc-${tag}`;
  await server.registerEncoder(encoderId, MODEL, "9.2.1");
  await server.registerEncoder(legacyEncoderId, MODEL, "8.4.0");
  const cameraIds: string[] = [];
  const allocationIds: string[] = [];
  for (let i = 0; i < (options.cameras ?? 2); i++) {
    const cameraId = `${label}-cam${i}-${tag}`;
    const { allocation } = await server.addCamera(encoderId, cameraId);
    cameraIds.push(cameraId);
    allocationIds.push(allocation!.allocationId);
  }

  const apiKeyName = `${label}-ops-key-${tag}`;
  const created = await t.vendor.identity.createApiKey({ accountId, name: apiKeyName });
  const anonymous = publicClients(t);
  const { accessToken: customerToken } = await anonymous.identity.exchangeApiKey({ apiKey: created.secret });
  const serverToken = await server.accessToken();
  const asCustomer = publicClients(t, { token: customerToken });
  let webhook: { webhookId: string; webhookUrl: string } | undefined;
  if (options.webhook && NotificationService.methods.some((m) => m.name === "CreateWebhook")) {
    // `.invalid` never resolves (RFC 6761): deliveries fail without leaving the machine.
    const created = await asCustomer.notifications.createWebhook({ url: `https://hooks.${label}-${tag}.invalid/cls`, eventTypes: [] });
    webhook = { webhookId: created.webhook!.webhookId, webhookUrl: created.webhook!.url };
  }
  return {
    label,
    accountId,
    accountName,
    poolId: pool!.poolId,
    poolName,
    otherPoolId: otherPool!.poolId,
    otherPoolName,
    serverId: identity.serverId,
    serverName,
    encoderId,
    legacyEncoderId,
    cameraIds,
    allocationIds,
    usedEnrollmentCode: enrollmentCode,
    apiKeyId: created.apiKey!.keyId,
    apiKeyName,
    apiKey: created.secret,
    ...webhook,
    server,
    serverToken,
    customerToken,
    asServer: publicClients(t, { token: serverToken }),
    asCustomer,
  };
}

/** Values that identify the tenant and that no other customer may ever be shown. */
export function privateValuesOf(tenant: Tenant): Record<string, string> {
  const values: Record<string, string> = {
    account_id: tenant.accountId,
    account_name: tenant.accountName,
    pool_id: tenant.poolId,
    pool_name: tenant.poolName,
    other_pool_id: tenant.otherPoolId,
    other_pool_name: tenant.otherPoolName,
    server_id: tenant.serverId,
    server_name: tenant.serverName,
    encoder_id: tenant.encoderId,
    legacy_encoder_id: tenant.legacyEncoderId,
    api_key_id: tenant.apiKeyId,
    api_key_name: tenant.apiKeyName,
  };
  if (tenant.webhookId) values.webhook_id = tenant.webhookId;
  if (tenant.webhookUrl) values.webhook_url = tenant.webhookUrl;
  tenant.cameraIds.forEach((id, i) => (values[`camera_id[${i}]`] = id));
  tenant.allocationIds.forEach((id, i) => (values[`allocation_id[${i}]`] = id));
  return values;
}
