/**
 * The renders `npm run chart:check` and test/chart/chart.test.ts run: values that must render
 * (and whose objects must pass the Kubernetes schemas and the consistency checks), and values
 * that must be refused, with the message that must say why.
 */
import { DEV_VALUES, PRODUCTION_VALUES, type RenderOptions } from "./chart.js";

export interface GoodRender {
  name: string;
  options: RenderOptions;
}

export interface BadRender {
  name: string;
  options: RenderOptions;
  /** Every pattern must appear in helm's error output. */
  errors: RegExp[];
}

const dev = [DEV_VALUES];
const production = [PRODUCTION_VALUES];

export const goodRenders: GoodRender[] = [
  { name: "development values (generated secrets)", options: { values: dev } },
  { name: "production-like values (existing secrets, Redis, tracing, alerts)", options: { values: production } },
  {
    name: "several allocation replicas without Redis, with postgresOnlyLocking",
    options: { values: dev, set: { "allocation.replicas": 3, "allocation.postgresOnlyLocking": true } },
  },
  {
    name: "production-like with metrics, ingress and network policies off",
    options: { values: production, set: { "metrics.enabled": false, "ingress.enabled": false, "networkPolicy.enabled": false } },
  },
  {
    name: "another release name and namespace, no chart-made ServiceAccounts, no migrations",
    options: { values: production, release: "licensing", namespace: "edge", set: { "serviceAccount.create": false, "migrations.enabled": false } },
  },
];

export const badRenders: BadRender[] = [
  {
    name: "defaults alone: no secret given or referenced, no host",
    options: {},
    errors: [/database: set database.existingSecret/, /tls: set tls.existingSecret/, /secrets.leaseSigningKey: set existingSecret/, /secrets.tokenSigningKey: set existingSecret/, /ingress.host is empty/],
  },
  {
    name: "several allocation replicas without Redis",
    options: { values: dev, set: { "allocation.replicas": 3 } },
    errors: [/allocation: replicas is 3 but Redis is not configured/],
  },
  {
    name: "allocation autoscaling beyond one replica without Redis",
    options: { values: dev, set: { "allocation.autoscaling.enabled": true } },
    errors: [/allocation: autoscaling.maxReplicas is 8 but Redis is not configured/],
  },
  {
    name: "ingress without a host",
    options: { values: production, set: { "ingress.host": "" } },
    errors: [/ingress.enabled is true but ingress.host is empty/],
  },
  {
    name: "database URL both inline and as an existing Secret",
    options: { values: production, set: { "database.url": "postgres://cls@db/cls" } },
    errors: [/set either database.existingSecret or database.url, not both/],
  },
  {
    name: "autoscaling minimum above maximum",
    options: { values: production, set: { "pool.autoscaling.minReplicas": 5, "pool.autoscaling.maxReplicas": 3 } },
    errors: [/pool.autoscaling: minReplicas \(5\) is greater than maxReplicas \(3\)/],
  },
  {
    name: "public and internal ports the same",
    options: { values: production, set: { "ports.internal": 8443 } },
    errors: [/ports: ports.public \(8443\), ports.internal \(8443\) and metrics.port \(9464\) must all differ/],
  },
  {
    name: "grace period shorter than preStop sleep plus draining",
    options: { values: production, set: { "termination.gracePeriodSeconds": 10 } },
    errors: [/termination: gracePeriodSeconds \(10\) must be greater than preStopSleepSeconds \(5\) \+ 10 s/],
  },
  {
    name: "schema: unknown log level",
    options: { values: production, set: { logLevel: "verbose" } },
    errors: [/\/logLevel/],
  },
  {
    name: "schema: misspelt value",
    options: { values: production, set: { "alocation.replicas": 2 } },
    errors: [/additional properties 'alocation' not allowed/],
  },
  {
    name: "schema: port out of range",
    options: { values: production, set: { "ports.public": 70000 } },
    errors: [/\/ports\/public/],
  },
  {
    name: "schema: token lifetime beyond what server-identity accepts",
    options: { values: production, set: { "serverIdentity.tokenTtlSeconds": 7200 } },
    errors: [/\/serverIdentity\/tokenTtlSeconds/],
  },
  {
    name: "schema: database URL that is not postgres://",
    options: { values: dev, set: { "database.url": "mysql://db/cls" } },
    errors: [/\/database\/url/],
  },
];
