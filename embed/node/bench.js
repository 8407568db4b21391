#!/usr/bin/env node
'use strict';
/**
 * Single-record latency of a model artifact through the client (input adaptation,
 * the onnxruntime run and output shaping), printed as JSON:
 *
 *   node bench.js ARTIFACT_FOLDER [--backend node|web] [--file model.onnx|model.ort|model.ids.onnx]
 *   (default file: the client's, the lean graph when the manifest has one)
 *                 [--runs 2000] [--warmup 200]
 *   {"model":"house_prices","version":"1.0.0","backend":"node","file":"model.onnx",
 *    "runs":2000,"p50_us":41.2,"p90_us":...,"p99_us":...,"mean_us":...}
 *
 * The record is golden.json's first accepted record.
 */

const fs = require('node:fs');
const path = require('node:path');

const { load } = require('./client');
const { decode } = require('./golden');

function parseArgs(argv) {
  const args = { backend: 'node', file: undefined, runs: 2000, warmup: 200, folder: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--backend') args.backend = argv[++i];
    else if (arg === '--file') args.file = argv[++i];
    else if (arg === '--runs') args.runs = Number(argv[++i]);
    else if (arg === '--warmup') args.warmup = Number(argv[++i]);
    else if (arg === '-h' || arg === '--help') args.help = true;
    else if (!args.folder) args.folder = arg;
    else throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
  }
  if (!args.help && !args.folder) throw new Error('give an artifact folder');
  if (!(Number.isInteger(args.runs) && args.runs > 0) || !(Number.isInteger(args.warmup) && args.warmup >= 0)) {
    throw new Error('--runs and --warmup take whole numbers');
  }
  return args;
}

function quantile(sorted, q) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(`${fs.readFileSync(__filename, 'utf8').split('*/')[0]}*/\n`);
    return;
  }
  const model = await load(args.folder, { backend: args.backend, file: args.file });
  const golden = JSON.parse(fs.readFileSync(path.join(args.folder, 'golden.json'), 'utf8'));
  const record = decode(golden.accepted[0].record);
  for (let i = 0; i < args.warmup; i++) await model.predict(record);
  const times = new Float64Array(args.runs);
  for (let i = 0; i < args.runs; i++) {
    const t0 = process.hrtime.bigint();
    await model.predict(record);
    times[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  await model.close();
  const sorted = Array.from(times).sort((a, b) => a - b);
  const round = (x) => Math.round(x * 10) / 10;
  const result = {
    model: model.name,
    version: model.version,
    backend: args.backend,
    file: model.file,
    runs: args.runs,
    p50_us: round(quantile(sorted, 0.5)),
    p90_us: round(quantile(sorted, 0.9)),
    p99_us: round(quantile(sorted, 0.99)),
    mean_us: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((exc) => {
  process.stderr.write(`bench.js: ${exc.message}\n`);
  process.exit(1);
});
