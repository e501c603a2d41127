// Reads vitest's JSON report and fails when any test failed or none ran. A guard
// against anything in the test process forcing exit code 0 (a dependency's exit hook
// once did: see test/support/postgres-global-setup.ts).
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-results.json';
const report = JSON.parse(readFileSync(file, 'utf8'));
const { numTotalTests = 0, numFailedTests = 0, numPassedTests = 0 } = report;
if (numFailedTests > 0 || numTotalTests === 0 || report.success === false) {
  console.error(
    `test report ${file}: ${numPassedTests} passed, ${numFailedTests} failed of ${numTotalTests}`,
  );
  process.exit(1);
}
// The plain closing line CI reads, from the report rather than from the runner's output.
console.log(`tests: ${numPassedTests} passed, ${numFailedTests} failed`);
