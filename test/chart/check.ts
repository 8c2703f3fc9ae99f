/**
 * `npm run chart:check`: lints the chart, renders it with development and production-like
 * values (and more), validates every rendered object against the Kubernetes API schemas,
 * checks the objects agree with each other, and checks that contradictory or invalid values
 * are refused. Exits non-zero, listing the problems, when anything is wrong.
 */
import {
  appVersionProblem,
  consistencyProblems,
  DEV_VALUES,
  KUBE_VERSION,
  lintChart,
  PRODUCTION_VALUES,
  renderChart,
  undocumentedValues,
  unknownFieldProblems,
  validateAll,
} from "./chart.js";
import { badRenders, goodRenders } from "./cases.js";
import { imageHeapProblems } from "./heap.js";

let failed = 0;
let passed = 0;
function report(name: string, problems: string[]): void {
  if (problems.length === 0) {
    passed += 1;
    console.log(`ok    ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL  ${name}\n${problems.map((problem) => `        ${problem}`).join("\n")}`);
  }
}

report("Chart.yaml appVersion is package.json's version", [appVersionProblem()].filter((p): p is string => !!p));
report("values.yaml documents every value", undocumentedValues().map((path) => `${path} has no comment`));
report("the image's NODE_OPTIONS carry the chart's default heap limits", imageHeapProblems());
for (const [name, values] of [["development", [DEV_VALUES]], ["production-like", [PRODUCTION_VALUES]]] as const) {
  const lint = lintChart([...values]);
  report(`helm lint --strict (${name} values)`, lint.ok ? [] : [lint.output]);
}
for (const render of goodRenders) {
  const result = renderChart(render.options);
  if (!result.ok) {
    report(`renders: ${render.name}`, [result.error]);
    continue;
  }
  report(`renders: ${render.name} (${result.objects.length} objects)`, []);
  report(`  every object valid against the Kubernetes ${KUBE_VERSION} API schemas`, validateAll(result.objects));
  report(`  no field the Kubernetes API does not define`, unknownFieldProblems(result.objects));
  report(`  objects consistent (ports, selectors, security, probes)`, consistencyProblems(result.objects));
}
for (const render of badRenders) {
  const result = renderChart(render.options);
  const problems = result.ok
    ? ["rendered, but must be refused"]
    : render.errors.filter((pattern) => !pattern.test(result.error)).map((pattern) => `error output lacks ${pattern}:\n${result.error}`);
  report(`refuses: ${render.name}`, problems);
}
console.log(`\nchart: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
