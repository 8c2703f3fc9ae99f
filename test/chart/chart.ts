/**
 * Rendering, linting and schema-validating the Helm chart in helm/cls, for `npm run chart:check`
 * (test/chart/check.ts) and the vitest suites beside this file.
 *
 * Helm comes from the npm registry (deploy/tools/helm.ts). Rendered objects are validated
 * against the Kubernetes API's JSON schemas with `kubernetes-models` (generated from the
 * Kubernetes OpenAPI of a current release: resource.k8s.io/v1 and all) and the PrometheusRule
 * against the prometheus-operator CRD schema (`@kubernetes-models/prometheus-operator`).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { parseAllDocuments, parseDocument } from "yaml";
import { Service, ServiceAccount, Secret, ConfigMap } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Ingress, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { repoRoot, runHelm } from "../../deploy/tools/helm.js";

export { repoRoot };
export const CHART_DIR = join(repoRoot, "helm", "cls");
export const DEV_VALUES = join(CHART_DIR, "ci", "dev-values.yaml");
export const PRODUCTION_VALUES = join(CHART_DIR, "ci", "production-values.yaml");
/** The Kubernetes version helm renders for (its .Capabilities) and whose schemas validate. */
export const KUBE_VERSION = "1.34.0";

/** A rendered Kubernetes object, as plain data. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RenderOptions {
  /** Values files, in order. */
  values?: string[];
  /** --set-string style overrides, applied after the files. */
  set?: Record<string, string | number | boolean>;
  release?: string;
  namespace?: string;
}

export interface RenderResult {
  ok: boolean;
  objects: K8sObject[];
  /** helm's error output (the `fail` message when validateValues refused the values). */
  error: string;
}

function valueArgs(options: RenderOptions): string[] {
  const args: string[] = [];
  for (const file of options.values ?? []) args.push("-f", file);
  for (const [key, value] of Object.entries(options.set ?? {})) args.push("--set", `${key}=${value}`);
  return args;
}

/** `helm template` of the chart; objects parsed from the output. */
export function renderChart(options: RenderOptions = {}): RenderResult {
  const result = runHelm([
    "template",
    options.release ?? "cls",
    CHART_DIR,
    "--namespace",
    options.namespace ?? "cls",
    "--kube-version",
    KUBE_VERSION,
    ...valueArgs(options),
  ]);
  if (result.status !== 0) return { ok: false, objects: [], error: result.stderr || result.stdout };
  const objects = parseAllDocuments(result.stdout)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${document.errors[0]!.message}`);
      return document.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
  return { ok: true, objects, error: "" };
}

/** `helm lint --strict` of the chart with the given values files. */
export function lintChart(values: string[] = []): { ok: boolean; output: string } {
  const result = runHelm(["lint", "--strict", CHART_DIR, "--kube-version", KUBE_VERSION, ...values.flatMap((file) => ["-f", file])]);
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

type Validating = new (data: never) => { validate(): void };
const MODELS: Record<string, Validating> = {
  "v1/Service": Service as unknown as Validating,
  "v1/ServiceAccount": ServiceAccount as unknown as Validating,
  "v1/Secret": Secret as unknown as Validating,
  "v1/ConfigMap": ConfigMap as unknown as Validating,
  "apps/v1/Deployment": Deployment as unknown as Validating,
  "batch/v1/Job": Job as unknown as Validating,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler as unknown as Validating,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget as unknown as Validating,
  "networking.k8s.io/v1/Ingress": Ingress as unknown as Validating,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy as unknown as Validating,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule as unknown as Validating,
};

/** Validates one object against its API schema; returns the problems (none when valid). */
export function schemaProblems(object: K8sObject): string[] {
  const model = MODELS[`${object.apiVersion}/${object.kind}`];
  const name = `${object.kind} ${object.metadata?.name}`;
  if (!model) return [`${name}: no schema known for ${object.apiVersion} ${object.kind}`];
  try {
    new model(structuredClone(object) as never).validate();
    return [];
  } catch (error) {
    return [`${name}: ${(error as Error).message}`];
  }
}

/** Where each kind's TypeScript type lives: the same generated API definitions as the schemas. */
const TYPES: Record<string, { module: string; type: string }> = {
  "v1/Service": { module: "kubernetes-models/v1/Service", type: "IService" },
  "v1/ServiceAccount": { module: "kubernetes-models/v1/ServiceAccount", type: "IServiceAccount" },
  "v1/Secret": { module: "kubernetes-models/v1/Secret", type: "ISecret" },
  "v1/ConfigMap": { module: "kubernetes-models/v1/ConfigMap", type: "IConfigMap" },
  "apps/v1/Deployment": { module: "kubernetes-models/apps/v1/Deployment", type: "IDeployment" },
  "batch/v1/Job": { module: "kubernetes-models/batch/v1/Job", type: "IJob" },
  "autoscaling/v2/HorizontalPodAutoscaler": { module: "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler", type: "IHorizontalPodAutoscaler" },
  "policy/v1/PodDisruptionBudget": { module: "kubernetes-models/policy/v1/PodDisruptionBudget", type: "IPodDisruptionBudget" },
  "networking.k8s.io/v1/Ingress": { module: "kubernetes-models/networking.k8s.io/v1/Ingress", type: "IIngress" },
  "networking.k8s.io/v1/NetworkPolicy": { module: "kubernetes-models/networking.k8s.io/v1/NetworkPolicy", type: "INetworkPolicy" },
  "monitoring.coreos.com/v1/PrometheusRule": { module: "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule", type: "IPrometheusRule" },
};

/**
 * Fields the API does not define (a misspelt `readOnlyRootFileSystem`, a field at the wrong
 * level). The JSON schemas allow unknown fields, as the API server's non-strict mode does, so
 * this asks TypeScript instead: each object becomes an object literal typed with the API's
 * generated interface, whose excess-property checks name every field the API lacks.
 */
export function unknownFieldProblems(objects: readonly K8sObject[]): string[] {
  const fileName = join(repoRoot, "test", "chart", "__rendered_objects__.ts");
  const lines: string[] = [];
  const owners: { line: number; name: string }[] = [];
  const imported = new Set<string>();
  const problems: string[] = [];
  objects.forEach((object, index) => {
    const key = `${object.apiVersion}/${object.kind}`;
    const type = TYPES[key];
    if (!type) {
      problems.push(`${object.kind} ${object.metadata?.name}: no type known for ${key}`);
      return;
    }
    const alias = `T${Object.keys(TYPES).indexOf(key)}`;
    if (!imported.has(alias)) {
      lines.unshift(`import type { ${type.type} as ${alias} } from ${JSON.stringify(type.module)};`);
      imported.add(alias);
      for (const owner of owners) owner.line += 1;
    }
    owners.push({ line: lines.length, name: `${object.kind} ${object.metadata?.name}` });
    lines.push(...`export const o${index}: ${alias} = ${JSON.stringify(object, null, 2)};`.split("\n"));
  });
  const source = lines.join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Preserve,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === fileName ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, " ");
    if (diagnostic.file?.fileName !== fileName || diagnostic.start === undefined) {
      problems.push(message);
      continue;
    }
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    const owner = [...owners].reverse().find((candidate) => candidate.line <= line);
    problems.push(`${owner?.name ?? "?"}: ${lines[line]?.trim()} — ${message}`);
  }
  return problems;
}

/** Every object's schema problems. */
export function validateAll(objects: readonly K8sObject[]): string[] {
  return objects.flatMap(schemaProblems);
}

/** The objects of one kind. */
export function ofKind<T = K8sObject>(objects: readonly K8sObject[], kind: string): (K8sObject & T)[] {
  return objects.filter((object) => object.kind === kind) as (K8sObject & T)[];
}

/** Chart.yaml's appVersion must be package.json's version. */
export function appVersionProblem(): string | undefined {
  const chart = parseDocument(readFileSync(join(CHART_DIR, "Chart.yaml"), "utf8")).toJS() as { appVersion: string };
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { version: string };
  if (String(chart.appVersion) !== pkg.version) {
    return `helm/cls/Chart.yaml appVersion is ${chart.appVersion} but package.json's version is ${pkg.version}: make them equal`;
  }
  return undefined;
}

/**
 * values.yaml documents every value: each key has a `#` comment right above it, or sits inside
 * a map that has one (such as podSecurityContext, whose keys are Kubernetes' own).
 */
export function undocumentedValues(): string[] {
  const lines = readFileSync(join(CHART_DIR, "values.yaml"), "utf8").split("\n");
  const missing: string[] = [];
  // Stack of open maps: their indent, key, and whether a comment covers their children.
  const stack: { indent: number; key: string; documented: boolean }[] = [];
  let previous = "";
  for (const line of lines) {
    const match = /^(\s*)([A-Za-z0-9_.\/-]+):(.*)$/.exec(line);
    if (match && !line.trimStart().startsWith("#") && !line.trimStart().startsWith("-")) {
      const indent = match[1]!.length;
      while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
      const commented = previous.trimStart().startsWith("#");
      const inherited = stack.some((entry) => entry.documented);
      const rest = match[3]!.trim();
      const isParent = rest === "";
      const path = [...stack.map((entry) => entry.key), match[2]!].join(".");
      if (!isParent && !commented && !inherited) missing.push(path);
      if (isParent) stack.push({ indent, key: match[2]!, documented: commented || inherited });
    }
    if (line.trim() !== "") previous = line;
  }
  return missing;
}

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; subPath?: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] }; seccompProfile?: { type: string } };
  readinessProbe?: { grpc?: { port: number; service?: string } };
  livenessProbe?: { grpc?: { port: number; service?: string } };
  startupProbe?: { grpc?: { port: number; service?: string } };
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: Record<string, unknown>;
  configMap?: { name: string; items?: { key: string; path: string }[] };
}
export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown> & { seccompProfile?: { type: string } };
  serviceAccountName?: string;
}
export type { Container as PodContainer, Volume as PodVolume };

/** The pod template of a Deployment or Job. */
export function podOf(object: K8sObject): { labels: Record<string, string>; spec: PodSpec } {
  const template = (object.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }).template;
  return { labels: template.metadata.labels, spec: template.spec };
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** Secrets the pods use that the chart does not render: they must exist before install. */
export function externalSecretNames(objects: readonly K8sObject[]): string[] {
  const rendered = new Set(ofKind(objects, "Secret").map((secret) => secret.metadata.name));
  const referenced = new Set<string>();
  for (const workload of [...ofKind(objects, "Deployment"), ...ofKind(objects, "Job")]) {
    const { spec } = podOf(workload);
    for (const volume of spec.volumes ?? []) if (volume.secret) referenced.add(volume.secret.secretName);
    for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
      for (const env of container.env ?? []) if (env.valueFrom?.secretKeyRef) referenced.add(env.valueFrom.secretKeyRef.name);
    }
  }
  for (const ingress of ofKind<{ spec: { tls?: { secretName: string }[] } }>(objects, "Ingress")) {
    for (const tls of ingress.spec.tls ?? []) referenced.add(tls.secretName);
  }
  return [...referenced].filter((name) => !rendered.has(name)).sort();
}

/**
 * What must hold between the rendered objects: names and ports line up from the Ingress to the
 * containers, every pod is locked down, probes hit the internal port, each service's node runs
 * with V8 heap limits, and each service has its ServiceAccount, PodDisruptionBudget and
 * NetworkPolicy.
 */
export function consistencyProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  const deployments = ofKind(objects, "Deployment");
  const services = ofKind<{ spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } }>(objects, "Service");
  const serviceAccounts = new Set(ofKind(objects, "ServiceAccount").map((sa) => sa.metadata.name));
  const podsFor = (selector: Record<string, string>) => deployments.filter((deployment) => matches(selector, podOf(deployment).labels));
  const portNames = (deployment: K8sObject) => new Set(podOf(deployment).spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name)));

  for (const service of services) {
    const selected = podsFor(service.spec.selector);
    if (selected.length !== 1) problems.push(`Service ${service.metadata.name} selects ${selected.length} Deployments, not 1`);
    for (const port of service.spec.ports) {
      for (const deployment of selected) {
        if (typeof port.targetPort !== "string" || !portNames(deployment).has(port.targetPort)) {
          problems.push(`Service ${service.metadata.name} port ${port.name} targets ${port.targetPort}, not a named port of ${deployment.metadata.name}`);
        }
      }
    }
  }

  for (const ingress of ofKind<{ spec: { rules: { http: { paths: { path: string; backend: { service: { name: string; port: { name?: string } } } }[] } }[] } }>(objects, "Ingress")) {
    for (const rule of ingress.spec.rules) {
      for (const path of rule.http.paths) {
        const service = services.find((s) => s.metadata.name === path.backend.service.name);
        if (!service) problems.push(`Ingress path ${path.path} goes to a Service ${path.backend.service.name} that is not rendered`);
        else if (!service.spec.ports.some((p) => p.name === path.backend.service.port.name)) {
          problems.push(`Ingress path ${path.path} goes to port ${path.backend.service.port.name}, which Service ${service.metadata.name} lacks`);
        } else if (path.backend.service.port.name !== "https") {
          problems.push(`Ingress path ${path.path} must go to a public (https) port, not ${path.backend.service.port.name}`);
        }
      }
    }
  }

  for (const policy of ofKind<{ spec: { podSelector: { matchLabels: Record<string, string> }; ingress?: { ports?: { port: string | number }[] }[] } }>(objects, "NetworkPolicy")) {
    for (const deployment of podsFor(policy.spec.podSelector.matchLabels)) {
      for (const rule of policy.spec.ingress ?? []) {
        for (const port of rule.ports ?? []) {
          if (typeof port.port === "string" && !portNames(deployment).has(port.port)) {
            problems.push(`NetworkPolicy ${policy.metadata.name} allows port ${port.port}, which ${deployment.metadata.name} does not name`);
          }
        }
      }
    }
  }

  for (const workload of [...deployments, ...ofKind(objects, "Job")]) {
    const name = `${workload.kind} ${workload.metadata.name}`;
    const { spec } = podOf(workload);
    if (spec.securityContext?.runAsNonRoot !== true) problems.push(`${name}: pod securityContext.runAsNonRoot is not true`);
    if (spec.securityContext?.seccompProfile?.type !== "RuntimeDefault") problems.push(`${name}: pod seccompProfile is not RuntimeDefault`);
    if (spec.serviceAccountName && !serviceAccounts.has(spec.serviceAccountName)) problems.push(`${name}: ServiceAccount ${spec.serviceAccountName} is not rendered`);
    for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
      const sc = container.securityContext ?? {};
      const where = `${name} container ${container.name}`;
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot is not true`);
      if (sc.runAsUser !== 10001) problems.push(`${where}: runAsUser is not 10001`);
      if (!sc.capabilities?.drop?.includes("ALL")) problems.push(`${where}: capabilities do not drop ALL`);
      if (sc.seccompProfile?.type !== "RuntimeDefault") problems.push(`${where}: seccompProfile is not RuntimeDefault`);
    }
    const main = spec.containers[0]!;
    const tmp = main.volumeMounts?.find((mount) => mount.mountPath === "/tmp");
    if (!tmp || !spec.volumes?.find((volume) => volume.name === tmp.name)?.emptyDir) problems.push(`${name}: no emptyDir at /tmp`);
    if (workload.kind === "Job") {
      const hook = workload.metadata.annotations?.["helm.sh/hook"];
      if (hook !== "pre-install,pre-upgrade") problems.push(`${name}: not a pre-install,pre-upgrade hook (${hook})`);
      continue;
    }
    const internalPort = Number(main.env?.find((env) => env.name === "INTERNAL_PORT")?.value);
    const grpcPort = main.ports?.find((port) => port.name === "grpc")?.containerPort;
    if (grpcPort !== internalPort) problems.push(`${name}: port grpc (${grpcPort}) is not INTERNAL_PORT (${internalPort})`);
    const publicPort = Number(main.env?.find((env) => env.name === "PUBLIC_PORT")?.value);
    if (main.ports?.find((port) => port.name === "https")?.containerPort !== publicPort) problems.push(`${name}: port https is not PUBLIC_PORT`);
    const metricsPort = main.ports?.find((port) => port.name === "metrics")?.containerPort ?? 0;
    const metricsEnv = Number(main.env?.find((env) => env.name === "METRICS_PORT")?.value);
    if (metricsEnv !== metricsPort) problems.push(`${name}: METRICS_PORT (${metricsEnv}) is not the declared metrics port (${metricsPort || "none"})`);
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"] as const) {
      const grpc = main[probe]?.grpc;
      if (!grpc) problems.push(`${name}: ${probe} is not a gRPC probe`);
      else if (grpc.port !== internalPort) problems.push(`${name}: ${probe} checks port ${grpc.port}, not the internal port ${internalPort}`);
    }
    if (main.livenessProbe?.grpc?.service !== "") problems.push(`${name}: liveness must check the empty service name (no dependencies)`);
    if (!main.readinessProbe?.grpc?.service) problems.push(`${name}: readiness must name a service (dependencies included)`);
    const selects = (kind: string) =>
      ofKind<{ spec: { selector?: { matchLabels: Record<string, string> }; podSelector?: { matchLabels: Record<string, string> } } }>(objects, kind).some((object) => {
        const selector = object.spec.selector?.matchLabels ?? object.spec.podSelector?.matchLabels ?? {};
        return Object.keys(selector).length > 0 && matches(selector, podOf(workload).labels) && "app.kubernetes.io/component" in selector;
      });
    if (!selects("PodDisruptionBudget") && ofKind(objects, "PodDisruptionBudget").length > 0) problems.push(`${name}: no PodDisruptionBudget`);
    if (!selects("NetworkPolicy") && ofKind(objects, "NetworkPolicy").length > 0) problems.push(`${name}: no NetworkPolicy of its own`);
    const args = main.args ?? [];
    const scriptAt = args.findIndex((arg) => /^dist\/[a-z-]+\.mjs$/.test(arg));
    if (main.command?.[0] !== "node" || scriptAt < 0 || args[scriptAt + 1] !== "serve") {
      problems.push(`${name}: command is not node <heap limits> dist/<service>.mjs serve`);
    }
    const nodeFlags = args.slice(0, Math.max(scriptAt, 0));
    if (!nodeFlags.some((flag) => /^--max-old-space-size=\d+$/.test(flag)) || !nodeFlags.some((flag) => /^--max-semi-space-size=\d+$/.test(flag))) {
      problems.push(`${name}: node runs without V8 heap limits (--max-old-space-size, --max-semi-space-size) before its script`);
    }
  }
  return problems;
}
