/**
 * `npm run build`: bundles each service's `services/<name>/src/main.ts` into `dist/<name>.mjs`
 * with esbuild, as the container image runs them (`node dist/<name>.mjs serve|migrate`).
 *
 * - The workspace packages (`@cls/*`) and the service's own code are bundled in.
 * - Every other package stays an import resolved from `node_modules` at run time, and must be
 *   one of the root package.json's `dependencies` (the image installs with `--omit=dev`):
 *   the build fails naming any package that is only a devDependency or not declared at all.
 */
import { readFileSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile, type Plugin } from "esbuild";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The services that run on their own, as the chart deploys them. */
export const SERVICES = ["pool", "allocation", "server-identity", "notification"] as const;

const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** Leaves every bare import external except the workspace's own `@cls/*` packages. */
const externalPackagesExceptWorkspace: Plugin = {
  name: "external-packages-except-workspace",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@cls/")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** `pg`, `@connectrpc/connect-node/foo` → `@connectrpc/connect-node`. */
function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function externalPackages(metafile: Metafile): Set<string> {
  const names = new Set<string>();
  for (const output of Object.values(metafile.outputs)) {
    for (const imported of output.imports) {
      if (!imported.external || builtins.has(imported.path)) continue;
      names.add(packageNameOf(imported.path));
    }
  }
  return names;
}

/** Bundles the four services; returns the output files. */
export async function buildServices(options: { outdir?: string; quiet?: boolean } = {}): Promise<string[]> {
  const outdir = options.outdir ?? join(repoRoot, "dist");
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints: Object.fromEntries(SERVICES.map((name) => [name, join("services", name, "src", "main.ts")])),
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    sourcemap: true,
    metafile: true,
    logLevel: options.quiet ? "warning" : "info",
    plugins: [externalPackagesExceptWorkspace],
    // Bundled CommonJS (none today) would need `require` inside an ES module.
    banner: { js: 'import { createRequire as __clsCreateRequire } from "node:module"; const require = __clsCreateRequire(import.meta.url);' },
  });

  const packageJson = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const runtime = new Set(Object.keys(packageJson.dependencies ?? {}));
  const missing = [...externalPackages(result.metafile)].filter((name) => !runtime.has(name)).sort();
  if (missing.length > 0) {
    throw new Error(
      `the bundles import ${missing.join(", ")} at run time, but package.json's "dependencies" lacks ${missing.length === 1 ? "it" : "them"}: ` +
        "the image installs with --omit=dev, so move them to dependencies",
    );
  }
  return SERVICES.map((name) => join(outdir, `${name}.mjs`));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = await buildServices();
  console.log(`built ${files.map((file) => file.slice(repoRoot.length + 1)).join(", ")}`);
}
