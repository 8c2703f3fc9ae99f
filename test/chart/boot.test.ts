import { createPublicKey } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { createLeaseSigner, generateEd25519PrivateKeyPem, verifyLease } from "@cls/lease";
import {
  AllocationAdminService,
  EncoderKind,
  HealthCheckResponse_ServingStatus as ServingStatus,
  NotificationAdminService,
  PoolAdminService,
  PoolExhaustedDetailSchema,
  ServerIdentityAdminService,
} from "@cls/proto";
import { loadOrCreateSelfSignedTls } from "@cls/server";
import { createVendorClient, GrpcStatus } from "@cls/vendor-client";
import { stringify } from "yaml";
import { buildServices } from "../../deploy/build.js";
import { readAllocationConfig } from "../../services/allocation/src/config.js";
import { readNotificationConfig } from "../../services/notification/src/config.js";
import { readPoolConfig } from "../../services/pool/src/config.js";
import { readServerIdentityConfig } from "../../services/server-identity/src/config.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { TEST_REDIS_URL } from "../support/env.js";
import { startIngress } from "../support/ingress.js";
import { DEV_VALUES, externalSecretNames, ofKind, podOf, PRODUCTION_VALUES, renderChart, type K8sObject } from "./chart.js";
import {
  bootDirectory,
  configMapsOf,
  localPod,
  planNetwork,
  probe,
  runToCompletion,
  secretsOf,
  startLocal,
  waitServing,
  type LocalCommand,
  type LocalNetwork,
  type LocalProcess,
  type SecretData,
} from "./boot.js";

/** Each service's config reader: the contract the chart's environment must meet. */
const CONFIG_READERS: Record<string, (env: Record<string, string | undefined>) => object> = {
  pool: readPoolConfig,
  allocation: readAllocationConfig,
  "server-identity": readServerIdentityConfig,
  notification: readNotificationConfig,
};

const RELEASE = "cls";
const NAMESPACE = "cls";
/** The vendor staff member the flow runs as: their public key goes in internalAuth.staff. */
const STAFF_ACTOR = "staff:chart-boot@vendor.example";
/** The services that call others, and so sign with a key of their own (the chart's service table's callers). */
const CALLERS: Record<string, string[]> = { pool: ["allocation", "notification"], allocation: ["notification"], "server-identity": ["pool", "allocation", "notification"] };

const publicKeyPem = (privateKeyPem: string) => createPublicKey(privateKeyPem).export({ type: "spki", format: "pem" }).toString();

interface Booted {
  objects: K8sObject[];
  secrets: SecretData;
  network: LocalNetwork;
  migrations: { job: string; code: number | null; output: string }[];
  deployments: { name: string; component: string; main: LocalCommand; process: LocalProcess; internalPort: number; readiness: string }[];
  /** The one public HTTPS host, as the rendered Ingress routes it. */
  ingress: { url: string; close(): Promise<void> };
  tlsCert: string;
  leaseKeyPem: string;
  /** The staff member's private key, whose public key the values trust as STAFF_ACTOR. */
  staffKeyPem: string;
}

/** The internal-auth material an SRE makes: a staff key and, for existing Secrets, the services' signing keys. */
interface InternalAuthKeys {
  staffKeyPem: string;
  /** Service → its Ed25519 private key PEM (production-like values only: development generates them). */
  serviceKeys: Record<string, string>;
}

function makeInternalAuthKeys(withServiceKeys: boolean): InternalAuthKeys {
  const serviceKeys: Record<string, string> = {};
  if (withServiceKeys) for (const service of Object.keys(CALLERS)) serviceKeys[service] = generateEd25519PrivateKeyPem();
  return { staffKeyPem: generateEd25519PrivateKeyPem(), serviceKeys };
}

/** The values file the SRE adds for internal auth: the staff's public key and, with existing Secrets, the services'. */
function internalAuthValues(keys: InternalAuthKeys, dir: string): string {
  const valuesKey: Record<string, string> = { pool: "pool", allocation: "allocation", "server-identity": "serverIdentity" };
  const servicePublicKeys = Object.fromEntries(Object.entries(keys.serviceKeys).map(([service, pem]) => [valuesKey[service]!, publicKeyPem(pem)]));
  const file = join(dir, "internal-auth-values.yaml");
  writeFileSync(
    file,
    stringify({ internalAuth: { staff: { [STAFF_ACTOR]: publicKeyPem(keys.staffKeyPem) }, ...(Object.keys(servicePublicKeys).length > 0 ? { servicePublicKeys } : {}) } }),
  );
  return file;
}

/** Makes the Secrets the production-like values reference, as an SRE would before installing. */
async function existingSecrets(database: TestDatabase, dir: string, keys: InternalAuthKeys): Promise<SecretData> {
  const tls = await loadOrCreateSelfSignedTls(join(dir, "made-tls"));
  const tokenKey = generateEd25519PrivateKeyPem();
  return {
    "cls-service-signing-keys": {
      "pool.pem": keys.serviceKeys.pool!,
      "allocation.pem": keys.serviceKeys.allocation!,
      "server-identity.pem": keys.serviceKeys["server-identity"]!,
    },
    "cls-database": { url: database.url },
    "cls-redis": { url: TEST_REDIS_URL },
    "cls-tls": { "tls.crt": tls.cert, "tls.key": tls.key },
    "cls-lease-signing-key": { "lease-signing-key.pem": generateEd25519PrivateKeyPem() },
    "cls-token-signing-key": {
      "token-signing-key.pem": tokenKey,
      "token-verify-keys.pem": publicKeyPem(tokenKey),
    },
  };
}

/** Renders, migrates and starts the chart's workloads as local processes, behind the Ingress's routes. */
async function boot(objects: K8sObject[], secrets: SecretData, dir: string, external: Record<string, string>, staffKeyPem: string): Promise<Booted> {
  const network = await planNetwork(objects, NAMESPACE, external);
  const configMaps = configMapsOf(objects);

  // Migration Jobs first, as the pre-install hook runs them, in hook-weight order.
  const migrations: Booted["migrations"] = [];
  const jobs = ofKind(objects, "Job").sort(
    (a, b) => Number(a.metadata.annotations?.["helm.sh/hook-weight"] ?? 0) - Number(b.metadata.annotations?.["helm.sh/hook-weight"] ?? 0),
  );
  for (const job of jobs) {
    const pod = localPod(job, secrets, network, dir, configMaps);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      const result = await runToCompletion(container);
      migrations.push({ job: container.name, ...result });
      if (result.code !== 0) throw new Error(`${container.name} exited ${result.code}:\n${result.output}`);
    }
  }

  const deployments: Booted["deployments"] = [];
  for (const deployment of ofKind(objects, "Deployment")) {
    const pod = localPod(deployment, secrets, network, dir, configMaps);
    for (const init of pod.initContainers) {
      const result = await runToCompletion(init);
      if (result.code !== 0) throw new Error(`${init.name} exited ${result.code}:\n${result.output}`);
    }
    const main = pod.containers[0]!;
    const container = podOf(deployment).spec.containers[0]!;
    const internalPort = network.deployments.get(deployment.metadata.name)!.byName.get("grpc")!.local;
    deployments.push({
      name: deployment.metadata.name,
      component: podOf(deployment).labels["app.kubernetes.io/component"]!,
      main,
      process: startLocal(main),
      internalPort,
      readiness: container.readinessProbe!.grpc!.service!,
    });
  }
  for (const deployment of deployments) {
    try {
      await waitServing(deployment.internalPort, "", deployment.process.alive);
      await waitServing(deployment.internalPort, deployment.readiness, deployment.process.alive);
    } catch (error) {
      throw new Error(`${deployment.name}: ${(error as Error).message}\n${deployment.process.output()}`);
    }
  }

  // The Ingress: one HTTPS host, each path prefix to a Service's public port.
  type IngressSpec = { spec: { tls: { secretName: string }[]; rules: { http: { paths: { path: string; backend: { service: { name: string; port: { name: string } } } }[] } }[] } };
  const [ingressObject] = ofKind<IngressSpec>(objects, "Ingress");
  if (!ingressObject) throw new Error("the chart rendered no Ingress");
  const services = ofKind<{ spec: { ports: { name: string; port: number }[] } }>(objects, "Service");
  const routes = ingressObject.spec.rules.flatMap((rule) =>
    rule.http.paths.map((path) => {
      const service = services.find((s) => s.metadata.name === path.backend.service.name)!;
      const port = service.spec.ports.find((p) => p.name === path.backend.service.port.name)!;
      return { pathPrefix: path.path, target: `https://localhost:${network.services.get(`${service.metadata.name}:${port.port}`)}` };
    }),
  );
  const ingressTls = secrets[ingressObject.spec.tls[0]!.secretName]!;
  const tls = { cert: ingressTls["tls.crt"]!, key: ingressTls["tls.key"]! };
  const ingress = await startIngress({ tls, routes });
  const leaseSecret = ofKind(objects, "Deployment")
    .flatMap((deployment) => podOf(deployment).spec.volumes ?? [])
    .find((volume) => volume.name === "lease-signing-key")!.secret!;
  const leaseKeyPem = secrets[leaseSecret.secretName]![leaseSecret.items![0]!.key]!;
  return { objects, secrets, network, migrations, deployments, ingress, tlsCert: tls.cert, leaseKeyPem, staffKeyPem };
}

/** `127.0.0.1:<port>` of a component's internal (grpc) Service port. */
function internalAddress(b: Booted, component: string): string {
  const service = ofKind<{ spec: { ports: { name: string; port: number }[] } }>(b.objects, "Service").find(
    (s) => s.metadata.labels?.["app.kubernetes.io/component"] === component && s.spec.ports.some((p) => p.name === "grpc"),
  )!;
  const port = service.spec.ports.find((p) => p.name === "grpc")!.port;
  return `127.0.0.1:${b.network.services.get(`${service.metadata.name}:${port}`)}`;
}

/** The private key a service's pod signs with, from the Secret its service-signing-key volume mounts. */
function serviceSigningKey(b: Booted, component: string): string {
  const deployment = ofKind(b.objects, "Deployment").find((d) => podOf(d).labels["app.kubernetes.io/component"] === component)!;
  const volume = podOf(deployment).spec.volumes!.find((v) => v.name === "service-signing-key")!.secret!;
  return b.secrets[volume.secretName]![volume.items![0]!.key]!;
}

/** The licensing flow through the booted processes: vendor set-up, enrollment, a verified lease, a refusal and its notification. */
async function licensingFlow(b: Booted): Promise<void> {
  const internal = (component: string) => internalAddress(b, component);
  const staff = { actor: STAFF_ACTOR, privateKeyPem: b.staffKeyPem };
  const pools = createVendorClient(PoolAdminService, internal("pool"), staff);
  const identity = createVendorClient(ServerIdentityAdminService, internal("server-identity"), staff);
  const notifications = createVendorClient(NotificationAdminService, internal("notification"), staff);
  try {
    const { account } = await pools.createAccount({ name: "Chart Boot Ltd" });
    const licenceTypes = await pools.listLicenceTypes({});
    if (!licenceTypes.licenceTypes.some((t) => t.licenceType === "edgevis-camera")) {
      await pools.createLicenceType({ licenceType: "edgevis-camera", description: "One camera on a v9 encoder" });
    }
    await pools.putEncoderModel({ model: { model: "hd-ip200", licenceType: "edgevis-camera", kind: EncoderKind.HARDWARE, minV9Version: "9.2" } });
    const { pool } = await pools.createPool({
      accountId: account!.accountId,
      name: "Boot pool",
      expiresAt: timestampFromDate(new Date(Date.now() + 365 * 24 * 3600 * 1000)),
      counts: { "edgevis-camera": 1 },
    });
    const { enrollmentCode } = await identity.createEnrollmentCode({ accountId: account!.accountId, poolId: pool!.poolId });

    // The EdgeVis Server pins the certificate the Ingress presents and the lease key the SRE installed.
    const signer = createLeaseSigner(b.leaseKeyPem);
    const pinned = [{ keyId: signer.keyId, publicKey: signer.publicKey }];
    const server = new EdgeVisClient({ baseUrl: b.ingress.url, ca: b.tlsCert, tlsPins: [spkiPinOfPem(b.tlsCert)], leaseKeys: pinned });
    const enrolled = await server.enroll(enrollmentCode, "chart boot site");
    expect(enrolled).toMatchObject({ accountId: account!.accountId, poolId: pool!.poolId });

    await server.registerEncoder("enc-1", "HD-IP200", "9.2.1");
    const granted = await server.addCamera("enc-1", "cam-1");
    expect(granted.lease.lease).toMatchObject({
      accountId: account!.accountId,
      poolId: pool!.poolId,
      serverId: enrolled.serverId,
      encoderId: "enc-1",
      cameraId: "cam-1",
      licenceType: "edgevis-camera",
    });
    expect(verifyLease(granted.lease.signed, pinned).cameraId).toBe("cam-1");
    expect((await server.allocation.getLeaseKey({})).keyId).toBe(signer.keyId);

    // The pool is full: refused with total and used; the refusal reaches notification through the outbox.
    const refusal = ConnectError.from(await server.addCamera("enc-1", "cam-2").catch((error: unknown) => error));
    expect(refusal.code).toBe(Code.ResourceExhausted);
    expect(refusal.findDetails(PoolExhaustedDetailSchema)).toEqual([expect.objectContaining({ total: 1, used: 1 })]);
    const deadline = Date.now() + 20_000;
    let listed = 0;
    while (Date.now() < deadline) {
      listed = (await server.notifications.listNotifications({ type: "acquisition.refused" })).notifications.length;
      if (listed > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(listed).toBe(1);
    const vendorView = await notifications.listAccountNotifications({ accountId: account!.accountId, type: "acquisition.refused" });
    expect(vendorView.notifications).toHaveLength(1);
  } finally {
    pools.close();
    identity.close();
    notifications.close();
  }
}

async function stopAll(b: Booted | undefined): Promise<(number | null)[]> {
  if (!b) return [];
  await b.ingress.close();
  return Promise.all(b.deployments.map((d) => d.process.stop()));
}

/** An OTLP/HTTP collector stand-in: accepts whatever is exported. */
async function startCollector(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

beforeAll(async () => {
  // The processes run dist/<service>.mjs, as the image does: build them once.
  await buildServices({ quiet: true });
}, 120_000);

describe.each([
  { name: "production-like values", values: PRODUCTION_VALUES, production: true },
  { name: "development values (secrets generated by Helm)", values: DEV_VALUES, production: false },
])("the chart boots with $name", ({ values, production }) => {
  let database: TestDatabase;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let directory: ReturnType<typeof bootDirectory>;
  let booted: Booted | undefined;
  let exitCodes: (number | null)[] | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    collector = await startCollector();
    directory = bootDirectory();
    let objects: K8sObject[];
    let existing: SecretData = {};
    // The SRE's internal-auth values: their staff key and, with existing Secrets, the services' public keys
    // (development values let Helm generate the services' keys and derive those).
    const keys = makeInternalAuthKeys(production);
    const authValues = internalAuthValues(keys, directory.dir);
    if (production) {
      const rendered = renderChart({ values: [values, authValues], release: RELEASE, namespace: NAMESPACE });
      if (!rendered.ok) throw new Error(rendered.error);
      objects = rendered.objects;
      existing = await existingSecrets(database, directory.dir, keys);
      expect(externalSecretNames(objects)).toEqual(Object.keys(existing).sort());
    } else {
      // Development values carry the database URL inline: point it at this test's database.
      const rendered = renderChart({ values: [values, authValues], release: RELEASE, namespace: NAMESPACE, set: { "database.url": database.url } });
      if (!rendered.ok) throw new Error(rendered.error);
      objects = rendered.objects;
      expect(externalSecretNames(objects)).toEqual([]);
    }
    booted = await boot(objects, secretsOf(objects, existing), directory.dir, { "otel-collector.observability.svc:4318": collector.url }, keys.staffKeyPem);
  }, 180_000);

  afterAll(async () => {
    await stopAll(booted);
    await collector?.close();
    await database?.drop();
    directory?.remove();
  });

  it("runs each service's migrate Job to success", () => {
    const jobs = booted!.migrations.map((m) => m.job.split("/")[0]).sort();
    expect(jobs).toEqual(["cls-allocation-migrate", "cls-notification-migrate", "cls-pool-migrate", "cls-server-identity-migrate"]);
    for (const migration of booted!.migrations) expect(migration.code, migration.output).toBe(0);
  });

  it("gives every service exactly the environment its config reads", () => {
    expect(booted!.deployments.map((d) => d.component).sort()).toEqual(["allocation", "notification", "pool", "server-identity"]);
    for (const deployment of booted!.deployments) {
      const read = CONFIG_READERS[deployment.component]!;
      const config = read(deployment.main.env) as Record<string, unknown>;
      const unknown = Object.keys(deployment.main.renderedEnv).filter((name) => !(name in config));
      expect({ service: deployment.component, unknown }).toEqual({ service: deployment.component, unknown: [] });
      expect(deployment.main.renderedEnv.REDIS_URL !== undefined).toBe(production);
      // Read optionally by the schema but required at start: every service checks its callers,
      // and the services that call others sign with their own key.
      const internalAuth = ["INTERNAL_TRUSTED_CALLERS_FILE", "SERVICE_SIGNING_KEY_FILE"].filter((name) => deployment.main.renderedEnv[name] !== undefined);
      expect({ service: deployment.component, internalAuth }).toEqual({
        service: deployment.component,
        internalAuth: deployment.component in CALLERS ? ["INTERNAL_TRUSTED_CALLERS_FILE", "SERVICE_SIGNING_KEY_FILE"] : ["INTERNAL_TRUSTED_CALLERS_FILE"],
      });
    }
  });

  it("trusts on each internal port the staff and exactly the services that call it", () => {
    for (const deployment of booted!.deployments) {
      const trusted = JSON.parse(readFileSync(deployment.main.env.INTERNAL_TRUSTED_CALLERS_FILE!, "utf8")) as Record<string, string>;
      const callers = Object.entries(CALLERS)
        .filter(([, callees]) => callees.includes(deployment.component))
        .map(([caller]) => `service:${caller}`);
      const services = Object.keys(trusted).filter((actor) => !actor.startsWith("staff:"));
      expect({ service: deployment.component, services: services.sort() }).toEqual({ service: deployment.component, services: callers.sort() });
      expect(trusted[STAFF_ACTOR]).toBe(publicKeyPem(booted!.staffKeyPem));
      // The key each calling service signs with is the one its callees trust.
      for (const caller of callers) expect(trusted[caller]).toBe(publicKeyPem(serviceSigningKey(booted!, caller.slice("service:".length))));
    }
  });

  it("refuses internal calls that are unsigned or signed by an untrusted key, but answers health checks", async () => {
    const address = internalAddress(booted!, "pool");
    const unsigned = createClient(PoolAdminService, createGrpcTransport({ baseUrl: `http://${address}`, defaultTimeoutMs: 5_000 }));
    const refusal = ConnectError.from(await unsigned.listLicenceTypes({}).catch((error: unknown) => error));
    expect(refusal.code).toBe(Code.Unauthenticated);

    const stranger = createVendorClient(PoolAdminService, address, { actor: STAFF_ACTOR, privateKeyPem: generateEd25519PrivateKeyPem() });
    try {
      await expect(stranger.listLicenceTypes({})).rejects.toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
    } finally {
      stranger.close();
    }
    expect(await probe(Number(address.split(":")[1]), "")).toBe(ServingStatus.SERVING);
  });

  it("lets a service's key into the services it calls only", async () => {
    const asPool = { actor: "service:pool", privateKeyPem: serviceSigningKey(booted!, "pool") };
    const allocation = createVendorClient(AllocationAdminService, internalAddress(booted!, "allocation"), asPool);
    const identity = createVendorClient(ServerIdentityAdminService, internalAddress(booted!, "server-identity"), asPool);
    try {
      await expect(allocation.getPoolUsage({ poolIds: [] })).resolves.toBeDefined();
      await expect(identity.listServers({})).rejects.toMatchObject({ code: GrpcStatus.UNAUTHENTICATED });
    } finally {
      allocation.close();
      identity.close();
    }
  });

  it("answers the rendered liveness and readiness probes on the internal port", async () => {
    for (const deployment of booted!.deployments) {
      expect(await probe(deployment.internalPort, "")).toBe(ServingStatus.SERVING);
      expect(await probe(deployment.internalPort, deployment.readiness)).toBe(ServingStatus.SERVING);
    }
  });

  it("serves Prometheus metrics where the pods' scrape annotations say", async () => {
    for (const deployment of booted!.objects.filter((o) => o.kind === "Deployment")) {
      const annotations = (deployment.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations;
      expect(annotations["prometheus.io/scrape"]).toBe("true");
      const port = booted!.network.deployments.get(deployment.metadata.name)!.byName.get("metrics")!;
      expect(String(port.containerPort)).toBe(annotations["prometheus.io/port"]);
      const response = await fetch(`http://127.0.0.1:${port.local}${annotations["prometheus.io/path"]}`);
      expect({ deployment: deployment.metadata.name, status: response.status }).toEqual({ deployment: deployment.metadata.name, status: 200 });
      await response.text();
    }
  });

  it("serves the licensing flow end to end through the Ingress's routes", async () => {
    await licensingFlow(booted!);
  }, 60_000);

  it("shuts every service down gracefully on SIGTERM (exit 0)", async () => {
    exitCodes = await stopAll(booted);
    const outputs = booted!.deployments.map((d) => `${d.name}:\n${d.process.output().slice(-2000)}`).join("\n");
    expect(exitCodes, outputs).toEqual(booted!.deployments.map(() => 0));
    booted = undefined;
  }, 60_000);
});
