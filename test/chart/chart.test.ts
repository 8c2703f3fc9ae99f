import { createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  appVersionProblem,
  consistencyProblems,
  DEV_VALUES,
  externalSecretNames,
  type K8sObject,
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
import { chartDefaultHeapFlags, imageHeapFlags, imageHeapProblems, type ServiceValuesKey } from "./heap.js";

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
    expect(externalSecretNames(objects)).toEqual(["cls-database", "cls-lease-signing-key", "cls-redis", "cls-service-signing-keys", "cls-tls", "cls-token-signing-key"]);
  });

  it("gives each key only to the services that need it", () => {
    const { objects } = renderChart({ values: [PRODUCTION_VALUES] });
    const secretsOf = (name: string) =>
      (podOf(ofKind(objects, "Deployment").find((d) => d.metadata.name === name)!).spec.volumes ?? [])
        .flatMap((volume) => (volume.secret ? volume.secret.items!.map((item) => `${volume.secret!.secretName}/${item.key}`) : []))
        .sort();
    expect(secretsOf("cls-allocation")).toEqual([
      "cls-lease-signing-key/lease-signing-key.pem",
      "cls-service-signing-keys/allocation.pem",
      "cls-tls/tls.crt",
      "cls-tls/tls.key",
      "cls-token-signing-key/token-verify-keys.pem",
    ]);
    expect(secretsOf("cls-server-identity")).toEqual(["cls-service-signing-keys/server-identity.pem", "cls-tls/tls.crt", "cls-tls/tls.key", "cls-token-signing-key/token-signing-key.pem"]);
    expect(secretsOf("cls-pool")).toEqual(["cls-service-signing-keys/pool.pem", "cls-tls/tls.crt", "cls-tls/tls.key", "cls-token-signing-key/token-verify-keys.pem"]);
    expect(secretsOf("cls-notification")).toEqual(["cls-tls/tls.crt", "cls-tls/tls.key", "cls-token-signing-key/token-verify-keys.pem"]);
  });

  describe("V8 heap limits", () => {
    const SERVICES: [string, ServiceValuesKey][] = [["pool", "pool"], ["allocation", "allocation"], ["server-identity", "serverIdentity"], ["notification", "notification"]];
    const argsOf = (objects: readonly K8sObject[], kind: string, name: string) => podOf(ofKind(objects, kind).find((o) => o.metadata.name === name)!).spec.containers[0]!.args;

    it("runs each service's node with the heap limits of its values, by default the image's", () => {
      const { objects } = renderChart({ values: [PRODUCTION_VALUES] });
      for (const [service, key] of SERVICES) {
        expect(argsOf(objects, "Deployment", `cls-${service}`)).toEqual([...chartDefaultHeapFlags(key), `dist/${service}.mjs`, "serve"]);
      }
      expect(imageHeapFlags()).toHaveLength(2);
      expect(imageHeapProblems()).toEqual([]);
    });

    it("takes a service's own heap values, leaving the others' alone", () => {
      const { objects } = renderChart({ values: [PRODUCTION_VALUES], set: { "allocation.heap.maxOldSpaceMb": 160, "allocation.heap.maxSemiSpaceMb": 8 } });
      expect(argsOf(objects, "Deployment", "cls-allocation")).toEqual(["--max-old-space-size=160", "--max-semi-space-size=8", "dist/allocation.mjs", "serve"]);
      expect(argsOf(objects, "Deployment", "cls-pool")).toEqual([...chartDefaultHeapFlags("pool"), "dist/pool.mjs", "serve"]);
    });

    it("leaves the migration Jobs, with resources of their own, to the image's defaults", () => {
      const { objects } = renderChart({ values: [PRODUCTION_VALUES], set: { "allocation.heap.maxOldSpaceMb": 160 } });
      expect(argsOf(objects, "Job", "cls-allocation-migrate")).toEqual(["dist/allocation.mjs", "migrate"]);
    });
  });

  describe("internal authentication", () => {
    const { objects } = renderChart({ values: [PRODUCTION_VALUES] });
    const trustedCallers = (objectsOf: typeof objects) => {
      const [configMap] = ofKind<{ data: Record<string, string> }>(objectsOf, "ConfigMap").filter((c) => c.metadata.name === "cls-internal-trusted-callers");
      return Object.fromEntries(Object.entries(configMap!.data).map(([key, json]) => [key, JSON.parse(json) as Record<string, string>]));
    };
    const deployment = (name: string) => ofKind(objects, "Deployment").find((d) => d.metadata.name === name)!;

    it("trusts on each internal port the staff and exactly the services that call it", () => {
      const actors = Object.fromEntries(Object.entries(trustedCallers(objects)).map(([key, trusted]) => [key, Object.keys(trusted).sort()]));
      expect(actors).toEqual({
        "allocation.json": ["service:pool", "service:server-identity", "staff:alice@vendor.example"],
        "notification.json": ["service:allocation", "service:pool", "service:server-identity", "staff:alice@vendor.example"],
        "pool.json": ["service:server-identity", "staff:alice@vendor.example"],
        "server-identity.json": ["staff:alice@vendor.example"],
      });
      for (const trusted of Object.values(trustedCallers(objects))) for (const pem of Object.values(trusted)) expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    });

    it("mounts each service's own trusted callers, and its own signing key only where it calls others", () => {
      for (const service of ["pool", "allocation", "server-identity", "notification"]) {
        const { spec } = podOf(deployment(`cls-${service}`));
        const env = Object.fromEntries((spec.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
        const mounts = Object.fromEntries((spec.containers[0]!.volumeMounts ?? []).map((m) => [m.name, m]));
        const volumes = Object.fromEntries((spec.volumes ?? []).map((v) => [v.name, v]));
        expect(volumes["internal-trusted-callers"]!.configMap).toMatchObject({ name: "cls-internal-trusted-callers", items: [{ key: `${service}.json`, path: "trusted-callers.json" }] });
        expect(mounts["internal-trusted-callers"]).toMatchObject({ readOnly: true });
        expect(env.INTERNAL_TRUSTED_CALLERS_FILE).toBe(`${mounts["internal-trusted-callers"]!.mountPath}/trusted-callers.json`);
        if (service === "notification") {
          expect(volumes["service-signing-key"]).toBeUndefined();
          expect(env.SERVICE_SIGNING_KEY_FILE).toBeUndefined();
        } else {
          expect(volumes["service-signing-key"]!.secret).toMatchObject({ secretName: "cls-service-signing-keys", items: [{ key: `${service}.pem`, path: "service-signing-key.pem" }] });
          expect(mounts["service-signing-key"]).toMatchObject({ readOnly: true });
          expect(env.SERVICE_SIGNING_KEY_FILE).toBe(`${mounts["service-signing-key"]!.mountPath}/service-signing-key.pem`);
        }
      }
    });

    it("gives the migration Jobs neither trusted callers nor signing keys (they call nobody)", () => {
      for (const job of ofKind(objects, "Job")) {
        const { spec } = podOf(job);
        expect((spec.volumes ?? []).map((v) => v.name)).not.toContain("service-signing-key");
        expect((spec.volumes ?? []).map((v) => v.name)).not.toContain("internal-trusted-callers");
        expect((spec.containers[0]!.env ?? []).map((e) => e.name)).not.toContain("SERVICE_SIGNING_KEY_FILE");
      }
    });

    it("rolls the pods when the trusted callers change (the services read them at start)", () => {
      const checksums = (values: Parameters<typeof renderChart>[0]) =>
        ofKind(renderChart(values).objects, "Deployment").map((d) => (d.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations["checksum/internal-auth"]);
      const before = checksums({ values: [PRODUCTION_VALUES] });
      expect(before.every((checksum) => /^[0-9a-f]{64}$/.test(checksum ?? ""))).toBe(true);
      expect(checksums({ values: [PRODUCTION_VALUES] })).toEqual(before);
      const otherStaff = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAH5iV1gA1nNVn+qLpkRCO5mSq8KcziHp2fbjQKhjrbQw=\n-----END PUBLIC KEY-----\n";
      const after = checksums({ values: [PRODUCTION_VALUES], set: { "internalAuth.staff.staff:bob@vendor\\.example": otherStaff } });
      for (const [index, checksum] of after.entries()) expect(checksum).not.toBe(before[index]);
    });

    it("derives the public keys of the signing keys it generates for development", () => {
      const dev = renderChart({ values: [DEV_VALUES] }).objects;
      const secret = ofKind<{ data: Record<string, string> }>(dev, "Secret").find((s) => s.metadata.name === "cls-service-signing-keys")!;
      expect(Object.keys(secret.data).sort()).toEqual(["allocation.pem", "pool.pem", "server-identity.pem"]);
      const trusted = trustedCallers(dev);
      for (const [key, value] of Object.entries(secret.data)) {
        const expected = createPublicKey(Buffer.from(value, "base64").toString("utf8")).export({ type: "spki", format: "pem" }).toString();
        expect(trusted["notification.json"]![`service:${key.replace(/\.pem$/, "")}`]).toBe(expected);
      }
    });
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
