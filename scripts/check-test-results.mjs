// Reads vitest's JSON report and fails when any test failed or none ran. A guard
// against anything in the test process forcing exit code 0 (a dependency's exit hook
// once did: see test/support/postgres-global-setup.ts).
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const file = process.argv[2] ?? '.vitest-results.json';
const report = JSON.parse(readFileSync(file, 'utf8'));
const { numTotalTests = 0, numFailedTests = 0, numPassedTests = 0 } = report;
if (numFailedTests > 0 || numTotalTests === 0 || report.success === false) {
  console.error(
    `test report ${file}: ${numPassedTests} passed, ${numFailedTests} failed of ${numTotalTests}`,
  );
  process.exit(1);
}
// The whole-run canary scan (test/support/canary-global-setup.ts) writes its report after
// the test report; a missing or older one means the scan did not run to the end.
const scanFile = path.join(path.dirname(file), '.vitest-canary-scan.json');
let scan;
try {
  if (statSync(scanFile).mtimeMs < statSync(file).mtimeMs)
    throw new Error('older than the test report');
  scan = JSON.parse(readFileSync(scanFile, 'utf8'));
} catch (error) {
  console.error(`canary scan report ${scanFile}: ${error.message}`);
  process.exit(1);
}
if (!Array.isArray(scan.hits) || scan.hits.length > 0 || !(scan.lines > 0)) {
  console.error(
    `canary scan: ${scan.hits?.length ?? '?'} hit(s) in ${scan.lines ?? 0} captured lines (${scanFile})`,
  );
  for (const hit of scan.hits ?? []) {
    console.error(`  ${path.join(scan.dir, hit.file)}:${hit.line}: ${hit.kind} in ${hit.source}`);
  }
  process.exit(1);
}
console.log(
  `canary scan: ${scan.lines} log lines and audit events, ${scan.canaries} canaries, no hit`,
);
// The plain closing line CI reads, from the report rather than from the runner's output.
console.log(`tests: ${numPassedTests} passed, ${numFailedTests} failed`);
