import { createPublicKey } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EdgeVisClient, spkiPinOfPem } from "@cls/edgevis-client";
import { createLeaseSigner, generateEd25519PrivateKeyPem, verifyLease } from "@cls/lease";
import { EncoderKind, HealthCheckResponse_ServingStatus as ServingStatus, NotificationAdminService, PoolAdminService, PoolExhaustedDetailSchema, ServerIdentityAdminService } from "@cls/proto";
import { loadOrCreateSelfSignedTls } from "@cls/server";
import { createVendorClient } from "@cls/vendor-client";
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
}

/** Makes the Secrets the production-like values reference, as an SRE would before installing. */
async function existingSecrets(database: TestDatabase, dir: string): Promise<SecretData> {
  const tls = await loadOrCreateSelfSignedTls(join(dir, "made-tls"));
  const tokenKey = generateEd25519PrivateKeyPem();
  return {
    "cls-database": { url: database.url },
    "cls-redis": { url: TEST_REDIS_URL },
    "cls-tls": { "tls.crt": tls.cert, "tls.key": tls.key },
    "cls-lease-signing-key": { "lease-signing-key.pem": generateEd25519PrivateKeyPem() },
    "cls-token-signing-key": {
      "token-signing-key.pem": tokenKey,
      "token-verify-keys.pem": createPublicKey(tokenKey).export({ type: "spki", format: "pem" }).toString(),
    },
  };
}

/** Renders, migrates and starts the chart's workloads as local processes, behind the Ingress's routes. */
async function boot(objects: K8sObject[], secrets: SecretData, dir: string, external: Record<string, string>): Promise<Booted> {
  const network = await planNetwork(objects, NAMESPACE, external);

  // Migration Jobs first, as the pre-install hook runs them, in hook-weight order.
  const migrations: Booted["migrations"] = [];
  const jobs = ofKind(objects, "Job").sort(
    (a, b) => Number(a.metadata.annotations?.["helm.sh/hook-weight"] ?? 0) - Number(b.metadata.annotations?.["helm.sh/hook-weight"] ?? 0),
  );
  for (const job of jobs) {
    const pod = localPod(job, secrets, network, dir);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      const result = await runToCompletion(container);
      migrations.push({ job: container.name, ...result });
      if (result.code !== 0) throw new Error(`${container.name} exited ${result.code}:\n${result.output}`);
    }
  }

  const deployments: Booted["deployments"] = [];
  for (const deployment of ofKind(objects, "Deployment")) {
    const pod = localPod(deployment, secrets, network, dir);
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
  return { objects, secrets, network, migrations, deployments, ingress, tlsCert: tls.cert, leaseKeyPem };
}

/** The licensing flow through the booted processes: vendor set-up, enrollment, a verified lease, a refusal and its notification. */
async function licensingFlow(b: Booted): Promise<void> {
  const internal = (component: string) => {
    const service = ofKind<{ spec: { ports: { name: string; port: number }[] } }>(b.objects, "Service").find(
      (s) => s.metadata.labels?.["app.kubernetes.io/component"] === component && s.spec.ports.some((p) => p.name === "grpc"),
    )!;
    const port = service.spec.ports.find((p) => p.name === "grpc")!.port;
    return `127.0.0.1:${b.network.services.get(`${service.metadata.name}:${port}`)}`;
  };
  const staff = { actor: "staff:chart-boot@vendor.example" };
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
    if (production) {
      const rendered = renderChart({ values: [values], release: RELEASE, namespace: NAMESPACE });
      if (!rendered.ok) throw new Error(rendered.error);
      objects = rendered.objects;
      existing = await existingSecrets(database, directory.dir);
      expect(externalSecretNames(objects)).toEqual(Object.keys(existing).sort());
    } else {
      // Development values carry the database URL inline: point it at this test's database.
      const rendered = renderChart({ values: [values], release: RELEASE, namespace: NAMESPACE, set: { "database.url": database.url } });
      if (!rendered.ok) throw new Error(rendered.error);
      objects = rendered.objects;
      expect(externalSecretNames(objects)).toEqual([]);
    }
    booted = await boot(objects, secretsOf(objects, existing), directory.dir, { "otel-collector.observability.svc:4318": collector.url });
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
