import { describe, expect, it } from "vitest";
import {
  appVersionProblem,
  consistencyProblems,
  DEV_VALUES,
  externalSecretNames,
  lintChart,
  ofKind,
  podOf,
  PRODUCTION_VALUES,
  renderChart,
  undocumentedValues,
  unknownFieldProblems,
  validateAll,
} from "./chart.js";
import { badRenders, goodRenders } from "./cases.js";

/** The Helm chart: lint, renders, Kubernetes schema validation, and refusals (what `npm run chart:check` runs). */
describe("helm/cls", () => {
  it("has package.json's version as its appVersion and documents every value", () => {
    expect(appVersionProblem()).toBeUndefined();
    expect(undocumentedValues()).toEqual([]);
  });

  it.each([
    ["development", DEV_VALUES],
    ["production-like", PRODUCTION_VALUES],
  ])("passes helm lint --strict with %s values", (_name, values) => {
    const lint = lintChart([values]);
    expect(lint.ok, lint.output).toBe(true);
  });

  describe.each(goodRenders)("renders $name", ({ options }) => {
    const result = renderChart(options);
    it("without error", () => {
      expect(result.error).toBe("");
      expect(result.ok).toBe(true);
    });
    it("into objects valid against the Kubernetes API schemas", () => {
      expect(result.objects.length).toBeGreaterThan(0);
      expect(validateAll(result.objects)).toEqual([]);
    });
    it("with no field the Kubernetes API does not define", () => {
      expect(unknownFieldProblems(result.objects)).toEqual([]);
    });
    it("into objects that agree with each other", () => {
      expect(consistencyProblems(result.objects)).toEqual([]);
    });
  });

  it.each(badRenders)("refuses $name", ({ options, errors }) => {
    const result = renderChart(options);
    expect(result.ok).toBe(false);
    for (const pattern of errors) expect(result.error).toMatch(pattern);
  });

  it("references exactly the existing Secrets the production-like values name, and renders none itself", () => {
    const { objects } = renderChart({ values: [PRODUCTION_VALUES] });
    expect(ofKind(objects, "Secret")).toEqual([]);
    expect(externalSecretNames(objects)).toEqual(["cls-database", "cls-lease-signing-key", "cls-redis", "cls-tls", "cls-token-signing-key"]);
  });

  it("gives each key only to the services that need it", () => {
    const { objects } = renderChart({ values: [PRODUCTION_VALUES] });
    const secretsOf = (name: string) =>
      (podOf(ofKind(objects, "Deployment").find((d) => d.metadata.name === name)!).spec.volumes ?? [])
        .flatMap((volume) => (volume.secret ? volume.secret.items!.map((item) => `${volume.secret!.secretName}/${item.key}`) : []))
        .sort();
    expect(secretsOf("cls-allocation")).toEqual(["cls-lease-signing-key/lease-signing-key.pem", "cls-tls/tls.crt", "cls-tls/tls.key", "cls-token-signing-key/token-verify-keys.pem"]);
    expect(secretsOf("cls-server-identity")).toEqual(["cls-tls/tls.crt", "cls-tls/tls.key", "cls-token-signing-key/token-signing-key.pem"]);
    for (const name of ["cls-pool", "cls-notification"]) {
      expect(secretsOf(name)).toEqual(["cls-tls/tls.crt", "cls-tls/tls.key", "cls-token-signing-key/token-verify-keys.pem"]);
    }
  });

  it("lets the internal ports be reached only by the services that call them and the admin namespace", () => {
    const { objects } = renderChart({ values: [PRODUCTION_VALUES] });
    type Policy = { spec: { ingress: { from: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown }[]; ports: { port: string }[] }[] } };
    const internalCallers = (name: string) => {
      const policy = ofKind<Policy>(objects, "NetworkPolicy").find((p) => p.metadata.name === name)!;
      const rule = policy.spec.ingress.find((r) => r.ports.some((p) => p.port === "grpc"))!;
      return rule.from.map((peer) => (peer.namespaceSelector ? "admin" : peer.podSelector!.matchLabels!["app.kubernetes.io/component"])).sort();
    };
    expect(internalCallers("cls-allocation")).toEqual(["admin", "pool", "server-identity"]);
    expect(internalCallers("cls-notification")).toEqual(["admin", "allocation", "pool", "server-identity"]);
    expect(internalCallers("cls-pool")).toEqual(["admin", "server-identity"]);
    expect(internalCallers("cls-server-identity")).toEqual(["admin"]);
    const publicRule = ofKind<Policy>(objects, "NetworkPolicy")
      .find((p) => p.metadata.name === "cls-pool")!
      .spec.ingress.find((r) => r.ports.some((p) => p.port === "https"))!;
    expect(publicRule.ports).toEqual([{ port: "https", protocol: "TCP" }]);
  });
});
