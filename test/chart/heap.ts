/**
 * The V8 heap limits CLS runs with by default: each service's `heap` block in
 * helm/cls/values.yaml, which the chart passes on node's command line, and the image's
 * NODE_OPTIONS (deploy/Dockerfile), which must say the same. The benchmark starts the service
 * with these flags too, so it measures what is deployed.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";

const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** The services' keys in values.yaml. */
export type ServiceValuesKey = "pool" | "allocation" | "serverIdentity" | "notification";

interface HeapValues {
  maxOldSpaceMb: number;
  maxSemiSpaceMb: number;
}

/** node's flags for these limits, in the order the chart renders them. */
export function heapFlags(heap: HeapValues): string[] {
  return [`--max-old-space-size=${heap.maxOldSpaceMb}`, `--max-semi-space-size=${heap.maxSemiSpaceMb}`];
}

/** The heap flags the chart gives a service's pods unless the values say otherwise. */
export function chartDefaultHeapFlags(service: ServiceValuesKey): string[] {
  const values = parse(readFileSync(join(REPO_ROOT, "helm", "cls", "values.yaml"), "utf8")) as Record<ServiceValuesKey, { heap: HeapValues }>;
  return heapFlags(values[service].heap);
}

/** The heap flags in the image's NODE_OPTIONS. */
export function imageHeapFlags(): string[] {
  const dockerfile = readFileSync(join(REPO_ROOT, "deploy", "Dockerfile"), "utf8");
  const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(dockerfile)?.[1] ?? "";
  return nodeOptions.split(/\s+/).filter((flag) => /^--max-(old|semi)-space-size=/.test(flag));
}

/** Every service whose default heap flags are not the image's, with both. */
export function imageHeapProblems(): string[] {
  const image = imageHeapFlags().join(" ");
  return (["pool", "allocation", "serverIdentity", "notification"] as const)
    .map((service) => ({ service, chart: chartDefaultHeapFlags(service).join(" ") }))
    .filter(({ chart }) => chart !== image)
    .map(({ service, chart }) => `deploy/Dockerfile's NODE_OPTIONS have "${image}" but helm/cls/values.yaml's ${service}.heap is "${chart}": make them equal`);
}
