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
