import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { rawPublicKey, verifyLease, type PinnedLeaseKey } from "@cls/lease";
import {
  AllocationService,
  NotificationService,
  PoolService,
  ServerIdentityService,
  type CheckEncoderRequestSchema,
  type Lease,
  type SignedLease,
} from "@cls/proto";
import { LeaseBook, type VerifiedLease } from "./lease-book.js";
import { pinnedIdentityCheck } from "./pinning.js";

/** What an enrolled server keeps on disk: its id, account and private key. */
export interface ServerIdentity {
  serverId: string;
  accountId: string;
  poolId: string;
  privateKeyPem: string;
}

export interface EdgeVisClientOptions {
  /** CLS's public URL, e.g. https://cls.example.com. */
  baseUrl: string;
  /** Extra trusted CA certificates (PEM), e.g. CLS's self-signed certificate. */
  ca?: string;
  /** SPKI pins of CLS's TLS certificate; any other certificate is refused. */
  tlsPins: readonly string[];
  /** Lease-signing keys the server trusts; every lease is verified against them. */
  leaseKeys: readonly PinnedLeaseKey[];
  identity?: ServerIdentity;
  /** Renew the access token this long before it expires. */
  tokenMarginMs?: number;
}

/**
 * The client an EdgeVis Server embeds. It talks to CLS over pinned HTTPS, proves who it is
 * with its own Ed25519 key, and accepts no lease that a pinned key did not sign.
 */
export class EdgeVisClient {
  readonly identityService: Client<typeof ServerIdentityService>;
  readonly allocation: Client<typeof AllocationService>;
  readonly pools: Client<typeof PoolService>;
  readonly notifications: Client<typeof NotificationService>;
  /** Every lease this server holds, judged offline by its own clock. */
  readonly leases = new LeaseBook();
  #identity: ServerIdentity | undefined;
  #privateKey: KeyObject | undefined;
  #token: { value: string; expiresAt: number } | undefined;
  #signingIn: Promise<string> | undefined;

  constructor(private readonly options: EdgeVisClientOptions) {
    const bearer: Interceptor = (next) => async (req) => {
      if (req.service.typeName === ServerIdentityService.typeName && req.method.name !== "RotateKey") return next(req);
      const token = await this.accessToken();
      req.header.set("authorization", `Bearer ${token}`);
      try {
        return await next(req);
      } catch (error) {
        // CLS's clock decides when a token ends; if it says so first, sign in again once.
        if (ConnectError.from(error).code !== Code.Unauthenticated || this.#token?.value !== token) throw error;
        this.#token = undefined;
        req.header.set("authorization", `Bearer ${await this.accessToken()}`);
        return next(req);
      }
    };
    const transport = createConnectTransport({
      baseUrl: options.baseUrl,
      httpVersion: "2",
      interceptors: [bearer],
      nodeOptions: { ...(options.ca ? { ca: options.ca } : {}), checkServerIdentity: pinnedIdentityCheck(options.tlsPins) },
    });
    this.identityService = createClient(ServerIdentityService, transport);
    this.allocation = createClient(AllocationService, transport);
    this.pools = createClient(PoolService, transport);
    this.notifications = createClient(NotificationService, transport);
    if (options.identity) this.#useIdentity(options.identity);
  }

  get identity(): ServerIdentity | undefined {
    return this.#identity;
  }

  #useIdentity(identity: ServerIdentity): void {
    this.#identity = identity;
    this.#privateKey = createPrivateKey(identity.privateKeyPem);
    this.#token = undefined;
  }

  /** Enrolls with a one-time code and a key pair generated here; the private key never leaves. */
  async enroll(enrollmentCode: string, serverName: string): Promise<ServerIdentity> {
    const { privateKey } = generateKeyPairSync("ed25519");
    const { server } = await this.identityService.enroll({
      enrollmentCode,
      serverName,
      publicKey: rawPublicKey(createPublicKey(privateKey)),
    });
    if (!server) throw new Error("enrollment returned no server");
    const identity = {
      serverId: server.serverId,
      accountId: server.accountId,
      poolId: server.poolId,
      privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    };
    this.#useIdentity(identity);
    return identity;
  }

  /**
   * A valid access token, signing a fresh challenge when the cached one is near its end.
   * Concurrent callers share one sign-in. The token's end is judged by its lifetime counted
   * from when it arrived, so a server clock that differs from CLS's does not matter.
   */
  async accessToken(): Promise<string> {
    const margin = this.options.tokenMarginMs ?? 30_000;
    if (this.#token && this.#token.expiresAt - margin > Date.now()) return this.#token.value;
    this.#signingIn ??= this.#signIn().finally(() => (this.#signingIn = undefined));
    return this.#signingIn;
  }

  async #signIn(): Promise<string> {
    const identity = this.#identity;
    const key = this.#privateKey;
    if (!identity || !key) throw new Error("not enrolled: call enroll() first");
    const { challenge } = await this.identityService.createChallenge({ serverId: identity.serverId });
    const { accessToken } = await this.identityService.authenticate({
      serverId: identity.serverId,
      challenge,
      signature: sign(null, challenge, key),
    });
    this.#token = { value: accessToken, expiresAt: Date.now() + tokenLifetimeMs(accessToken) };
    return accessToken;
  }

  /** Verifies a lease against the pinned keys; throws LeaseVerificationError otherwise. */
  verify(signed: SignedLease): VerifiedLease {
    return { lease: verifyLease(signed, this.options.leaseKeys), signed };
  }

  async registerEncoder(encoderId: string, model: string, firmwareVersion: string) {
    const response = await this.allocation.registerEncoder({ encoderId, model, firmwareVersion });
    const legacyLease = response.legacyLease ? this.#keep(this.verify(response.legacyLease)) : undefined;
    return { encoder: response.encoder, legacyLease };
  }

  async addCamera(encoderId: string, cameraId: string) {
    const response = await this.allocation.acquireLicence({ encoderId, cameraId });
    if (!response.lease) throw new Error("acquire returned no lease");
    return { allocation: response.allocation, lease: this.#keep(this.verify(response.lease)) };
  }

  async removeCamera(encoderId: string, cameraId: string): Promise<boolean> {
    const { released } = await this.allocation.releaseLicence({ encoderId, cameraId });
    this.leases.forget(encoderId, cameraId);
    return released;
  }

  #keep(verified: VerifiedLease): VerifiedLease {
    this.leases.record(verified);
    return verified;
  }

  async dailyCheck(encoders: MessageInitShape<typeof CheckEncoderRequestSchema>[]) {
    const { outcomes } = await this.allocation.checkEncoders({ encoders });
    return outcomes.map((outcome) => {
      const revocations = outcome.result?.revocations ?? [];
      for (const revocation of revocations) this.leases.forget(revocation.encoderId, revocation.cameraId);
      return {
        encoderId: outcome.encoderId,
        errorCode: outcome.errorCode,
        errorMessage: outcome.errorMessage,
        leases: (outcome.result?.leases ?? []).map((lease) => this.#keep(this.verify(lease))),
        revocations,
      };
    });
  }
}

/** A token's lifetime (exp − iat) from its payload; the client does not verify it, CLS does. */
function tokenLifetimeMs(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { exp?: number; iat?: number };
    if (typeof payload.exp === "number" && typeof payload.iat === "number" && payload.exp > payload.iat) return (payload.exp - payload.iat) * 1000;
  } catch {
    // Not a JWT we can read: treat it as short-lived.
  }
  return 60_000;
}
