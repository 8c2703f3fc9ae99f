/**
 * Boots a rendered chart as local processes: what the kubelet would do with the chart's pods,
 * minus the containers. For each Job and Deployment it takes the container's command, args
 * and environment exactly as rendered, resolves `secretKeyRef`s and secret/emptyDir volumes
 * from the rendered Secrets (or the "existing" Secrets a test supplies) into files under a
 * temporary directory (configMap volumes from the rendered ConfigMaps), and rewrites only what
 * a cluster provides:
 *
 * - mount paths → the local directories holding the volumes' files;
 * - Service DNS names (http://<service>.<namespace>.svc:<port>) → 127.0.0.1 and the local port
 *   of the container port the Service targets; PUBLIC_PORT / INTERNAL_PORT / METRICS_PORT →
 *   free local ports;
 * - hosts outside the cluster (a collector, say) → local stand-ins the test names.
 *
 * The working directory is the repository root, laid out as the image's /app (dist/, node_modules/).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@cls/proto";
import { ofKind, podOf, repoRoot, type K8sObject, type PodContainer, type PodSpec } from "./chart.js";

/** Secret contents by Secret name and key, as plain strings. */
export type SecretData = Record<string, Record<string, string>>;
/** ConfigMap contents by ConfigMap name and key. */
export type ConfigMapData = Record<string, Record<string, string>>;

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The rendered Secrets' data (base64-decoded), merged with the supplied existing Secrets. */
export function secretsOf(objects: readonly K8sObject[], existing: SecretData = {}): SecretData {
  const all: SecretData = { ...existing };
  for (const secret of ofKind<{ data?: Record<string, string>; stringData?: Record<string, string> }>(objects, "Secret")) {
    const data: Record<string, string> = {};
    for (const [key, value] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(value, "base64").toString("utf8");
    Object.assign(data, secret.stringData ?? {});
    all[secret.metadata.name] = data;
  }
  return all;
}

/** The rendered ConfigMaps' data. */
export function configMapsOf(objects: readonly K8sObject[]): ConfigMapData {
  const all: ConfigMapData = {};
  for (const configMap of ofKind<{ data?: Record<string, string> }>(objects, "ConfigMap")) all[configMap.metadata.name] = { ...configMap.data };
  return all;
}

function secretValue(secrets: SecretData, name: string, key: string, where: string): string {
  const secret = secrets[name];
  if (!secret) throw new Error(`${where}: Secret ${name} is neither rendered nor supplied`);
  const value = secret[key];
  if (value === undefined) throw new Error(`${where}: Secret ${name} has no key ${key}`);
  return value;
}

/** A Deployment's local ports: its container ports (by name) → a free local port. */
interface LocalPorts {
  byName: Map<string, { containerPort: number; local: number }>;
}

/** The local network: which Service name and port lead to which local port. */
export interface LocalNetwork {
  namespace: string;
  /** Deployment name → its ports. */
  deployments: Map<string, LocalPorts>;
  /** "<service>:<port>" → local port. */
  services: Map<string, number>;
  /** "host:port" outside the cluster → local base URL (e.g. a collector stand-in). */
  external: Record<string, string>;
}

/** Allocates local ports for every Deployment and maps every Service port onto them. */
export async function planNetwork(objects: readonly K8sObject[], namespace: string, external: Record<string, string> = {}): Promise<LocalNetwork> {
  const deployments = new Map<string, LocalPorts>();
  for (const deployment of ofKind(objects, "Deployment")) {
    const byName = new Map<string, { containerPort: number; local: number }>();
    for (const port of podOf(deployment).spec.containers[0]!.ports ?? []) {
      byName.set(port.name!, { containerPort: port.containerPort, local: await freePort() });
    }
    deployments.set(deployment.metadata.name, { byName });
  }
  const services = new Map<string, number>();
  for (const service of ofKind<{ spec: { selector: Record<string, string>; ports: { port: number; targetPort: string }[] } }>(objects, "Service")) {
    const target = ofKind(objects, "Deployment").find((deployment) =>
      Object.entries(service.spec.selector).every(([key, value]) => podOf(deployment).labels[key] === value),
    );
    if (!target) throw new Error(`Service ${service.metadata.name} selects no Deployment`);
    for (const port of service.spec.ports) {
      const local = deployments.get(target.metadata.name)!.byName.get(port.targetPort);
      if (!local) throw new Error(`Service ${service.metadata.name} targets port ${port.targetPort}, which ${target.metadata.name} does not declare`);
      services.set(`${service.metadata.name}:${port.port}`, local.local);
    }
  }
  return { namespace, deployments, services, external };
}

/** Rewrites a URL naming a cluster Service (or a known external host) to its local address. */
function localUrl(value: string, network: LocalNetwork): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (!url.hostname || !url.port) return value;
  const external = network.external[`${url.hostname}:${url.port}`];
  if (external) return external;
  const suffixes = [`.${network.namespace}.svc.cluster.local`, `.${network.namespace}.svc`, `.${network.namespace}`, ""];
  for (const suffix of suffixes) {
    if (suffix && !url.hostname.endsWith(suffix)) continue;
    const service = url.hostname.slice(0, url.hostname.length - suffix.length);
    const local = network.services.get(`${service}:${url.port}`);
    if (local !== undefined) {
      url.hostname = "127.0.0.1";
      url.port = String(local);
      return url.toString().replace(/\/$/, value.endsWith("/") ? "/" : "");
    }
  }
  return value;
}

/** Variables that name a port the process listens on: each is moved to a free local port. */
const PORT_VARIABLES = new Set(["PUBLIC_PORT", "INTERNAL_PORT", "METRICS_PORT"]);

/** A container made ready to run locally. */
export interface LocalCommand {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** The environment as rendered (secret references resolved, nothing rewritten). */
  renderedEnv: Record<string, string>;
}

/** Writes a pod's volumes to disk and resolves each of its containers into a local command. */
export function localPod(
  workload: K8sObject,
  secrets: SecretData,
  network: LocalNetwork,
  root: string,
  configMaps: ConfigMapData = {},
): { initContainers: LocalCommand[]; containers: LocalCommand[] } {
  const { spec } = podOf(workload);
  const podDir = join(root, `${workload.kind.toLowerCase()}-${workload.metadata.name}`);
  const volumeDirs = new Map<string, string>();
  for (const volume of spec.volumes ?? []) {
    const dir = join(podDir, "volumes", volume.name);
    mkdirSync(dir, { recursive: true });
    if (volume.secret) {
      const secret = secrets[volume.secret.secretName];
      if (!secret) throw new Error(`${workload.metadata.name}: volume ${volume.name} mounts Secret ${volume.secret.secretName}, neither rendered nor supplied`);
      const items = volume.secret.items ?? Object.keys(secret).map((key) => ({ key, path: key }));
      for (const item of items) {
        writeFileSync(join(dir, item.path), secretValue(secrets, volume.secret.secretName, item.key, `${workload.metadata.name} volume ${volume.name}`), { mode: 0o600 });
      }
    } else if (volume.configMap) {
      const configMap = configMaps[volume.configMap.name];
      if (!configMap) throw new Error(`${workload.metadata.name}: volume ${volume.name} mounts ConfigMap ${volume.configMap.name}, which is not rendered`);
      const items = volume.configMap.items ?? Object.keys(configMap).map((key) => ({ key, path: key }));
      for (const item of items) {
        const value = configMap[item.key];
        if (value === undefined) throw new Error(`${workload.metadata.name} volume ${volume.name}: ConfigMap ${volume.configMap.name} has no key ${item.key}`);
        writeFileSync(join(dir, item.path), value, { mode: 0o444 });
      }
    } else if (!volume.emptyDir) {
      throw new Error(`${workload.metadata.name}: volume ${volume.name} is neither a Secret, a ConfigMap nor an emptyDir`);
    }
    volumeDirs.set(volume.name, dir);
  }
  const deploymentPorts = network.deployments.get(workload.metadata.name);
  const resolve = (container: PodContainer): LocalCommand => {
    const where = `${workload.metadata.name}/${container.name}`;
    const mounts = (container.volumeMounts ?? [])
      .map((mount) => {
        const dir = volumeDirs.get(mount.name);
        if (!dir) throw new Error(`${where}: mounts volume ${mount.name}, which the pod lacks`);
        return { path: mount.mountPath, local: mount.subPath ? join(dir, mount.subPath) : dir };
      })
      .sort((a, b) => b.path.length - a.path.length);
    const localPath = (value: string) => {
      for (const mount of mounts) {
        if (value === mount.path || value.startsWith(`${mount.path}/`)) return mount.local + value.slice(mount.path.length);
      }
      return value;
    };
    const renderedEnv: Record<string, string> = {};
    for (const variable of container.env ?? []) {
      if (variable.value !== undefined) renderedEnv[variable.name] = variable.value;
      else if (variable.valueFrom?.secretKeyRef) {
        const ref = variable.valueFrom.secretKeyRef;
        renderedEnv[variable.name] = secretValue(secrets, ref.name, ref.key, `${where} env ${variable.name}`);
      } else throw new Error(`${where}: env ${variable.name} has a source the boot test does not know`);
    }
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(renderedEnv)) {
      let local = localUrl(localPath(value), network);
      if (PORT_VARIABLES.has(name) && deploymentPorts && value !== "0") {
        const port = [...deploymentPorts.byName.values()].find((p) => String(p.containerPort) === value);
        if (!port) throw new Error(`${where}: ${name}=${value} is not a declared container port`);
        local = String(port.local);
      }
      env[name] = local;
    }
    const [program, ...programArgs] = [...(container.command ?? []), ...(container.args ?? [])];
    if (program !== "node") throw new Error(`${where}: runs ${program}, not node`);
    return { name: where, command: process.execPath, args: programArgs.map(localPath), env, renderedEnv };
  };
  return { initContainers: (spec.initContainers ?? []).map(resolve), containers: spec.containers.map(resolve) };
}

/** The environment a local process starts from: nothing of this test process's own CLS settings. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "LANG", "TZ", "SYSTEMROOT"]) if (process.env[name]) env[name] = process.env[name]!;
  return env;
}

/** Runs a command to completion; resolves with its exit code and output. */
export function runToCompletion(command: LocalCommand, timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.command, command.args, { cwd: repoRoot, env: { ...baseEnv(), ...command.env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command.name} did not finish in ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A Deployment's container running locally. */
export interface LocalProcess {
  name: string;
  output(): string;
  alive(): boolean;
  /** SIGTERM, as the kubelet sends after preStop; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts a long-running command (a Deployment's container) in the background. */
export function startLocal(command: LocalCommand): LocalProcess {
  const child = spawn(command.command, command.args, { cwd: repoRoot, env: { ...baseEnv(), ...command.env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  return {
    name: command.name,
    output: () => output,
    alive: () => exitCode === undefined,
    async stop() {
      if (exitCode === undefined) child.kill("SIGTERM");
      return exited;
    },
  };
}

/** grpc.health.v1.Health/Check on a local h2c port, as the kubelet's gRPC probe asks it. */
export async function probe(port: number, service: string): Promise<ServingStatus> {
  const client = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, defaultTimeoutMs: 2_000 }));
  return (await client.check({ service })).status;
}

/** Polls a probe until it answers SERVING. */
export async function waitServing(port: number, service: string, isAlive: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`the process exited before port ${port} answered ${service || "(liveness)"}`);
    try {
      if ((await probe(port, service)) === ServingStatus.SERVING) return;
      last = "NOT_SERVING";
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`port ${port} never answered SERVING for ${service || "(liveness)"}: ${String(last)}`);
}

/** A fresh temporary directory for one boot. */
export function bootDirectory(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "cls-chart-boot-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type { PodSpec };
