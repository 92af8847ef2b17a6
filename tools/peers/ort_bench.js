#!/usr/bin/env node
// ONNX Runtime peer of `vitqk bench --peers`: times an ONNX model (exported by torch_bench.py
// from the same weights) on the same input and prints JSON with the median and the logits.
//
//   (cd tools/peers && npm install --ignore-scripts)   # once: onnxruntime-node, CPU only
//   node tools/peers/ort_bench.js --model m.onnx --input pixels.safetensors --threads 2 --runs 10
//
// ORT at its usual best on CPU: all graph optimisations, sequential execution, intra-op threads
// as asked, one inter-op thread.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = {threads: 1, runs: 10, warmup: 2};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in a) && key !== 'model' && key !== 'input') throw new Error(`unknown option ${argv[i]}`);
    a[key] = key === 'model' || key === 'input' ? argv[i + 1] : Number(argv[i + 1]);
  }
  if (!a.model || !a.input) throw new Error('usage: ort_bench.js --model M.onnx --input X.safetensors [--threads N --runs R --warmup W]');
  return a;
}

// The float32 tensor `name` of a safetensors file (the format: u64 header size, JSON, data).
function readTensor(file, name) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const t = header[name];
  if (!t || t.dtype !== 'F32') throw new Error(`${file}: no float32 tensor '${name}'`);
  const [b, e] = t.data_offsets;
  const bytes = buf.subarray(8 + n + b, 8 + n + e);
  const data = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < data.length; ++i) data[i] = bytes.readFloatLE(4 * i);
  return {shape: t.shape, data};
}

function median(v) {
  const s = [...v].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const x = readTensor(a.input, 'pixel_values');
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape)};
  let out;
  for (let i = 0; i < a.warmup; ++i) out = await session.run(feeds);
  const times = [];
  for (let i = 0; i < a.runs; ++i) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) * 1e-6);
  }
  const logits = out[session.outputNames[0]];
  const version = require(path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'package.json')).version;
  process.stdout.write(JSON.stringify({
    engine: 'onnxruntime', version, setup: `onnxruntime-node ${version}, graph optimisations all, ${a.threads} intra-op threads`,
    threads: a.threads, median_ms: median(times), times_ms: times, logits_shape: logits.dims, logits: Array.from(logits.data),
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_bench.js: ${e.message}\n`);
  process.exit(1);
});
