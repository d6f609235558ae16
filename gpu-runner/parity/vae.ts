// VAE parity, from the tensors `vae/io.safetensors` holds: encode (P.image → P.latent_dist.{mean, logvar, std,
// mean_scaled}), decode (P.latents → P.decoded), pipeline decode (P.pipeline_latents → P.decoded_from_pipeline_latents,
// divided by the scaling factor in-graph), and every `debug.encode.*` / `debug.decode.*` activation.
import { join } from 'node:path';
import { openVaeFolder, type VaeComponent } from '../models/checkpoint/diffusers-folder.ts';
import { inlineParams, type ParamSource } from '../models/params.ts';
import { openGraphSession } from '../models/session.ts';
import { buildVaeDecoderGraph, buildVaeEncoderGraph, VAE_DECODE, VAE_ENCODE } from '../models/vae/build.ts';
import { compare, failure, type ParityCheck, type ParityResult, scaledTolerance } from './check.ts';
import { caseLabel, FixtureTensors, fixtureFile, MODEL_RELATIVE_TOLERANCE } from './model-fixtures.ts';

const COMPONENT = 'vae';
const LATENT_DIST = ['mean', 'logvar', 'std', 'mean_scaled'] as const;

type Case = { label: string; graph: 'encode' | 'decode'; input: string; scaled: boolean; expected: Record<string, string>; debug: string };

function discoverCases(io: FixtureTensors): Case[] {
  const cases: Case[] = [];
  for (const prefix of io.prefixesWith(['image', 'latent_dist.mean'])) {
    const expected: Record<string, string> = {};
    for (const name of LATENT_DIST) if (io.has(`${prefix}latent_dist.${name}`)) expected[VAE_ENCODE[name === 'mean_scaled' ? 'meanScaled' : name]] = `${prefix}latent_dist.${name}`;
    cases.push({ label: `${caseLabel(prefix)}.encode`, graph: 'encode', input: `${prefix}image`, scaled: false, expected, debug: `${prefix}debug.encode.` });
  }
  for (const prefix of io.prefixesWith(['latents', 'decoded'])) {
    cases.push({
      label: `${caseLabel(prefix)}.decode`, graph: 'decode', input: `${prefix}latents`, scaled: false,
      expected: { [VAE_DECODE.output]: `${prefix}decoded` }, debug: `${prefix}debug.decode.`,
    });
  }
  for (const prefix of io.prefixesWith(['pipeline_latents', 'decoded_from_pipeline_latents'])) {
    cases.push({
      label: `${caseLabel(prefix)}.decode_pipeline_latents`, graph: 'decode', input: `${prefix}pipeline_latents`, scaled: true,
      expected: { [VAE_DECODE.output]: `${prefix}decoded_from_pipeline_latents` }, debug: '',
    });
  }
  return cases;
}

async function* runCase(vae: VaeComponent, params: ParamSource, io: FixtureTensors, c: Case): AsyncIterable<ParityResult> {
  const [batch, , height, width] = io.shape(c.input) as [number, number, number, number];
  const options = { batch, height, width, debug: c.debug !== '' };
  const { graph } =
    c.graph === 'encode'
      ? buildVaeEncoderGraph(vae.plan, params, options)
      : buildVaeDecoderGraph(vae.plan, params, { ...options, scaledLatents: c.scaled });
  const session = await openGraphSession(graph);
  try {
    const outputs = await session.run({ [c.graph === 'encode' ? VAE_ENCODE.input : VAE_DECODE.input]: io.feed(c.input) });
    const debugNames = c.debug === '' ? [] : io.namesUnder(c.debug);
    const checks: [string, string, string][] = [
      ...Object.entries(c.expected).map(([output, tensor]): [string, string, string] => [`${c.label}.${output}`, output, tensor]),
      ...debugNames.map((name): [string, string, string] => [`${c.label}.debug.${name}`, `debug.${c.graph}.${name}`, `${c.debug}${name}`]),
    ];
    for (const [caseName, output, tensor] of checks) {
      const expected = io.float32(tensor);
      const actual = outputs[output];
      yield actual
        ? compare(COMPONENT, caseName, actual, expected, scaledTolerance(MODEL_RELATIVE_TOLERANCE, expected))
        : failure(COMPONENT, caseName, MODEL_RELATIVE_TOLERANCE, new Error(`the graph has no output ${output}`));
    }
  } finally {
    await session.release();
  }
}

async function* runVaeParityUnchecked(dir: string): AsyncIterable<ParityResult> {
  const ioPath = fixtureFile(dir, COMPONENT, 'io.safetensors');
  if (!ioPath) return;
  const io = FixtureTensors.load(ioPath);
  const vae = openVaeFolder(join(dir, COMPONENT));
  const params = inlineParams(vae.weights);
  const cases = discoverCases(io);
  if (cases.length === 0) yield failure(COMPONENT, 'cases', MODEL_RELATIVE_TOLERANCE, new Error(`${ioPath} holds no encode or decode case`));
  for (const c of cases) {
    try {
      yield* runCase(vae, params, io, c);
    } catch (error) {
      yield failure(COMPONENT, c.label, MODEL_RELATIVE_TOLERANCE, error);
    }
  }
}

export const vaeParity: ParityCheck = {
  component: COMPONENT,
  appliesTo: (dir) => fixtureFile(dir, COMPONENT, 'io.safetensors') !== null,
  run: runVaeParity,
};

/** A check never throws: a fixture or checkpoint that cannot even be opened is one failed `<setup>` result. */
async function* runVaeParity(dir: string): AsyncIterable<ParityResult> {
  try {
    yield* runVaeParityUnchecked(dir);
  } catch (error) {
    yield failure(COMPONENT, '<setup>', MODEL_RELATIVE_TOLERANCE, error);
  }
}
