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
/** An Ed25519 public key in PEM (of a key nobody keeps), and one of the production-like values' service keys. */
const ANOTHER_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAH5iV1gA1nNVn+qLpkRCO5mSq8KcziHp2fbjQKhjrbQw=\n-----END PUBLIC KEY-----\n";
const POOL_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA0QJR1b4jup+E3Ap8GNJurlM+VromatZiJDtSkR4EWnU=\n-----END PUBLIC KEY-----\n";

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
    name: "256Mi memory limits with the default heap limits",
    options: {
      values: production,
      set: { "pool.resources.limits.memory": "256Mi", "allocation.resources.limits.memory": "256Mi", "serverIdentity.resources.limits.memory": "256Mi", "notification.resources.limits.memory": "256Mi" },
    },
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
    errors: [
      /database: set database.existingSecret/,
      /tls: set tls.existingSecret/,
      /secrets.leaseSigningKey: set existingSecret/,
      /secrets.tokenSigningKey: set existingSecret/,
      /secrets.serviceSigningKeys: set existingSecret/,
      /internalAuth.servicePublicKeys.pool: empty/,
      /ingress.host is empty/,
    ],
  },
  {
    name: "a service's public key missing while its signing key is an existing Secret",
    options: { values: production, set: { "internalAuth.servicePublicKeys.serverIdentity": "" } },
    errors: [/internalAuth.servicePublicKeys.serverIdentity: empty: set it to the PEM public key of server-identity's signing key \(key "server-identity.pem"/],
  },
  {
    name: "a service's public key given while development generates the signing keys",
    options: { values: dev, set: { "internalAuth.servicePublicKeys.pool": ANOTHER_PUBLIC_KEY } },
    errors: [/internalAuth.servicePublicKeys.pool: set, but the services' signing keys are generated/],
  },
  {
    name: "a staff entry not named staff:<name>",
    options: { values: production, set: { "internalAuth.staff.alice": ANOTHER_PUBLIC_KEY, "internalAuth.staff.service:pool": ANOTHER_PUBLIC_KEY } },
    errors: [/internalAuth.staff: "alice" is not a staff actor: name each entry staff:<name>/, /internalAuth.staff: "service:pool" is not a staff actor/],
  },
  {
    name: "a private key where a public key belongs",
    options: { values: production, set: { "internalAuth.staff.staff:bob": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA5bkCwS8pGWTYMy/wjddjsAdc5ckghDQFT9WAd1Gbjg\n-----END PRIVATE KEY-----\n" } },
    errors: [/internalAuth.staff\["staff:bob"\]: is a private key: only public keys belong in the values/],
  },
  {
    name: "a staff key that is not an Ed25519 PEM public key",
    options: { values: production, set: { "internalAuth.staff.staff:bob": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI bob" } },
    errors: [/internalAuth.staff\["staff:bob"\]: must be an Ed25519 public key in PEM/],
  },
  {
    name: "a staff member sharing a service's key",
    options: { values: production, set: { "internalAuth.staff.staff:bob": POOL_PUBLIC_KEY } },
    errors: [/internalAuth: service:pool and staff:bob have the same public key/],
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
    name: "heap limits that do not fit the memory limit",
    options: { values: production, set: { "allocation.heap.maxOldSpaceMb": 200, "allocation.heap.maxSemiSpaceMb": 16, "allocation.resources.limits.memory": "0.25Gi" } },
    errors: [/allocation.heap: maxOldSpaceMb \(200\) \+ 3 × maxSemiSpaceMb \(16\) \+ 128 MiB for the rest of the process is 376 MiB, more than resources.limits.memory \(0.25Gi\)/],
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
    name: "schema: heap limit not in whole MiB",
    options: { values: production, set: { "notification.heap.maxOldSpaceMb": "96Mi" } },
    errors: [/\/notification\/heap\/maxOldSpaceMb/],
  },
  {
    name: "schema: misspelt internal-auth value",
    options: { values: production, set: { "internalAuth.servicePublicKey.pool": "x" } },
    errors: [/additional properties 'servicePublicKey' not allowed/],
  },
  {
    name: "schema: database URL that is not postgres://",
    options: { values: dev, set: { "database.url": "mysql://db/cls" } },
    errors: [/\/database\/url/],
  },
];
