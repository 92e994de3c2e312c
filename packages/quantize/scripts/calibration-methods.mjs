// Does entropy calibration pay? Static QDQ INT8 of the digits CNN (models/digits) and, if given,
// the digits MLP (models/digits-mlp), calibrated by min-max, percentile and entropy on the same
// 256 training digits; output error against fp32 and top-1 accuracy on all 2,000 test digits.
//   npx tsc -b && node packages/quantize/scripts/calibration-methods.mjs [digits-mlp.onnx]
// (node models/digits-mlp/train.mjs --out digits-mlp.onnx makes the MLP.)
import { readFileSync } from 'node:fs';
import { digitFeeds, digitsModel, digitsSplit } from '../dist/__tests__/digits.js';
import { quantize, relativeError } from '../dist/index.js';

const METHODS = [{ kind: 'minmax' }, { kind: 'percentile', percentile: 99.99 }, { kind: 'entropy' }];
const { train, test } = digitsSplit();
const flat = (feeds) => feeds.map(({ x }) => ({ x: { ...x, dims: [x.dims[0], 784] } }));

const models = [
  { name: 'digits CNN (models/digits)', bytes: digitsModel(), feeds: (set, b, n) => digitFeeds(set, b, n) },
];
if (process.argv[2]) {
  models.push({
    name: 'digits MLP 784-1024-1024-10',
    bytes: new Uint8Array(readFileSync(process.argv[2])),
    feeds: (set, b, n) => flat(digitFeeds(set, b, n)),
  });
}

for (const m of models) {
  console.log(`\n${m.name}: qdq, calibrated on 256 training digits, evaluated on ${test.labels.length} test digits`);
  console.log('method            rel. error (logits)   max |err|   top-1 fp32   top-1 int8');
  for (const method of METHODS) {
    const { report } = await quantize(m.bytes, {
      mode: 'qdq',
      method,
      calibration: m.feeds(train, 32, 256),
      evaluation: { feeds: m.feeds(test, 500), labels: test.labels },
      labelOutput: 'logits',
      timingRuns: 0,
    });
    const logits = report.errors.evaluation.filter((e) => e.output === 'logits');
    const label = method.kind === 'percentile' ? `percentile ${method.percentile}` : method.kind;
    const pct = (x) => `${(x * 100).toFixed(2)} %`;
    console.log(
      `${label.padEnd(18)}${relativeError(logits).toExponential(3).padEnd(22)}${logits[0].maxAbs.toFixed(4).padEnd(12)}` +
        `${pct(report.accuracy.fp32).padEnd(13)}${pct(report.accuracy.int8)}`,
    );
  }
}
