/**
 * Reads a V8 `.cpuprofile` (node --cpu-prof) of the service and says where its CPU went:
 * self time per frame and per owner (a package, a Node subsystem, a CLS source file), and
 * inclusive time of the frames that matter. Frames inside the esbuild bundle are mapped back
 * to their source file through the `// libs/…/x.ts` markers esbuild writes before each module.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { round } from "./stats.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FrameShare {
  frame: string;
  owner: string;
  pct: number;
}

export interface ProfileSummary {
  /** Wall time the profile covers, ms. */
  wallMs: number;
  /** Share of samples where the thread was busy (not idle), percent. */
  busyPct: number;
  /** Self time by owner, percent of busy time. */
  owners: { owner: string; pct: number }[];
  /** Heaviest frames by self time, percent of busy time. */
  topSelf: FrameShare[];
  /** Heaviest frames by inclusive (on-stack) time, percent of busy time. */
  topInclusive: FrameShare[];
}

/** Maps a line of the bundle to the source module esbuild put there. */
function bundleModules(path: string): (line: number) => string {
  const markers: { line: number; module: string }[] = [];
  const lines = readFileSync(path, "utf8").split("\n");
  for (const [index, text] of lines.entries()) {
    const match = /^\/\/ ((?:libs|services)\/\S+\.ts)$/.exec(text);
    if (match) markers.push({ line: index, module: match[1]! });
  }
  return (line) => {
    let found = "bundle";
    for (const marker of markers) {
      if (marker.line > line) break;
      found = marker.module;
    }
    return found;
  };
}

function ownerOf(frame: CallFrame, moduleAt: (url: string, line: number) => string | undefined): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === "(garbage collector)") return "(garbage collector)";
    if (functionName === "(idle)") return "(idle)";
    if (functionName === "(program)") return "(program: native, not attributed)";
    return `(native) ${functionName}`;
  }
  const bundled = moduleAt(url, frame.lineNumber);
  if (bundled) return `cls ${bundled.replace(/^(libs|services)\/([^/]+)\/src\//, "$2/")}`;
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch) return packageMatch[1]!;
  const internal = /^node:(?:internal\/)?([^/]+)/.exec(url);
  if (internal) return `node:${internal[1]!.replace(/\.js$/, "")}`;
  return url;
}

/** A span of CLOCK_MONOTONIC in µs: V8 stamps its profiles with it, and process.hrtime reads it. */
export interface MonotonicWindow {
  startUs: number;
  endUs: number;
}

/** Now on the clock V8 stamps CPU profiles with (CLOCK_MONOTONIC), in µs. */
export function monotonicNowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Summarises `profilePath`; with `window`, only the samples taken inside it (the measured
 * load, not start-up, seeding or shutdown).
 */
export function summariseProfile(profilePath: string, bundlePath: string, top = 12, window?: MonotonicWindow): ProfileSummary {
  const profile = JSON.parse(readFileSync(profilePath, "utf8")) as CpuProfile;
  const bundleModuleAt = bundleModules(bundlePath);
  const bundleUrl = `file://${bundlePath}`;
  const moduleAt = (url: string, line: number) => (url === bundleUrl || (url.startsWith("file://") && fileURLToPath(url) === bundlePath) ? bundleModuleAt(line) : undefined);

  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const frames = new Map<number, { key: string; name: string; owner: string }>();
  const frameKey = (node: ProfileNode) => {
    let frame = frames.get(node.id);
    if (!frame) {
      const owner = ownerOf(node.callFrame, moduleAt);
      const name = node.callFrame.functionName || "(anonymous)";
      frame = { key: `${name}\u0000${owner}`, name, owner };
      frames.set(node.id, frame);
    }
    return frame;
  };

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const owners = new Map<string, number>();
  const names = new Map<string, { name: string; owner: string }>();
  let idle = 0;
  let total = 0;
  let at = profile.startTime;
  for (const [i, sampleId] of profile.samples.entries()) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.startUs || at > window.endUs)) continue;
    // The delta after a sample is the time it stands for.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    total += delta;
    const node = byId.get(sampleId);
    if (!node) continue;
    const leaf = frameKey(node);
    if (leaf.owner === "(idle)") {
      idle += delta;
      continue;
    }
    names.set(leaf.key, leaf);
    self.set(leaf.key, (self.get(leaf.key) ?? 0) + delta);
    owners.set(leaf.owner, (owners.get(leaf.owner) ?? 0) + delta);
    const seen = new Set<string>();
    for (let id: number | undefined = sampleId; id !== undefined; id = parent.get(id)) {
      const frame = frameKey(byId.get(id)!);
      if (frame.name === "(root)" || seen.has(frame.key)) continue;
      seen.add(frame.key);
      names.set(frame.key, frame);
      inclusive.set(frame.key, (inclusive.get(frame.key) ?? 0) + delta);
    }
  }
  const busy = Math.max(1, total - idle);
  const pct = (value: number) => round((100 * value) / busy);
  const ranked = (map: Map<string, number>) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, value]) => ({ frame: names.get(key)!.name, owner: names.get(key)!.owner, pct: pct(value) }));
  return {
    wallMs: round(total / 1000, 0),
    busyPct: round((100 * (total - idle)) / Math.max(1, total)),
    owners: [...owners.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([owner, value]) => ({ owner, pct: pct(value) })),
    topSelf: ranked(self),
    // Inclusive shares of the outermost frames are near 100% and say nothing: keep the informative ones.
    topInclusive: ranked(new Map([...inclusive.entries()].filter(([key]) => !/^(processTicksAndRejections|runMicrotasks|listOnTimeout|processTimers|emit|onStreamRead|\(anonymous\))\u0000/.test(key)))),
  };
}
