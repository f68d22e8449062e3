// Raw outputs of a TF.js graph model, run by TensorFlow.js itself (pure-JS CPU backend):
// the reference that ppvad_jax.models.centernet's JAX interpreter is tested against.
//
//   node tools/tfjs_reference.mjs --model=M.json --input=A.f32[,B.f32...] --shape=1,512,512,3 \
//       --outputs=tower_0/keypoints,tower_0/wh --out=DIR
//
// Each input file: one input tensor, little-endian float32, row-major, of the given shape; the
// model is loaded once and run on each in turn. Writes DIR/<i>_<k>.f32, the k-th output for the
// i-th input (cast to float32, row-major), and DIR/outputs.json:
// {"backend", "tfjs", "runs": [{"input", "outputs": [{"name", "shape", "dtype", "file"}]}]}.
// The weight shards are read from beside the model file; nothing is fetched.
import fs from 'node:fs';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { loadGraphModelSync } from '@tensorflow/tfjs-converter';

function parseArgs(argv) {
  const args = {};
  for (const arg of argv) {
    const match = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!match) throw new Error(`expected --name=value, got ${arg}`);
    args[match[1]] = match[2];
  }
  for (const name of ['model', 'input', 'shape', 'outputs', 'out']) {
    if (!(name in args)) throw new Error(`missing --${name}=...`);
  }
  return args;
}

function readArtifacts(modelPath) {
  const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  const dir = path.dirname(modelPath);
  const weightSpecs = [];
  const shards = [];
  for (const group of model.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) shards.push(fs.readFileSync(path.join(dir, shard)));
  }
  const joined = Buffer.concat(shards);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  return {
    modelTopology: model.modelTopology,
    weightSpecs,
    weightData,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
    userDefinedMetadata: model.userDefinedMetadata,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  await tf.setBackend('cpu');
  await tf.ready();
  const model = loadGraphModelSync(readArtifacts(args.model));
  const shape = args.shape.split(',').map(Number);
  const expected = shape.reduce((a, b) => a * b, 1);
  const names = args.outputs.split(',');
  fs.mkdirSync(args.out, { recursive: true });
  const runs = [];
  for (const [i, inputPath] of args.input.split(',').entries()) {
    const raw = fs.readFileSync(inputPath);
    // A copy: a small file's Buffer can sit at an offset of a shared pool that is not 4-aligned.
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    if (values.length !== expected) {
      throw new Error(`${inputPath} holds ${values.length} floats, shape ${shape} needs ${expected}`);
    }
    const input = tf.tensor(values, shape, 'float32');
    let results = model.execute(input, names);
    if (!Array.isArray(results)) results = [results];
    const outputs = [];
    for (let k = 0; k < names.length; k++) {
      const file = `${i}_${k}.f32`;
      const data = await tf.cast(results[k], 'float32').data();
      fs.writeFileSync(path.join(args.out, file), Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      outputs.push({ name: names[k], shape: results[k].shape, dtype: results[k].dtype, file });
    }
    tf.dispose([input, ...results]);
    runs.push({ input: inputPath, outputs });
  }
  const summary = { backend: tf.getBackend(), tfjs: tf.version_core, runs };
  fs.writeFileSync(path.join(args.out, 'outputs.json'), JSON.stringify(summary, null, 1));
}

main().catch((error) => {
  console.error(error.stack || String(error));
  process.exit(1);
});
