// UNet parity: for every case in `unet/io.safetensors` (a prefix P with P.sample, P.timestep,
// P.encoder_hidden_states, P.out_sample), the graph's output and each `P.debug.*` activation it has.
import { join } from 'node:path';
import { openUnetFolder } from '../models/checkpoint/diffusers-folder.ts';
import { inlineParams } from '../models/params.ts';
import { openGraphSession } from '../models/session.ts';
import { buildUnetGraph, UNET_INPUTS, UNET_OUTPUT } from '../models/unet/build.ts';
import { compare, failure, type ParityCheck, type ParityResult, scaledTolerance } from './check.ts';
import { caseLabel, FixtureTensors, fixtureFile, MODEL_RELATIVE_TOLERANCE } from './model-fixtures.ts';

const COMPONENT = 'unet';
const CASE_TENSORS = ['sample', 'timestep', 'encoder_hidden_states', 'out_sample'] as const;

async function* runUnetParityUnchecked(dir: string): AsyncIterable<ParityResult> {
  const ioPath = fixtureFile(dir, COMPONENT, 'io.safetensors');
  if (!ioPath) return;
  const io = FixtureTensors.load(ioPath);
  const unet = openUnetFolder(join(dir, COMPONENT));
  const params = inlineParams(unet.weights);
  const prefixes = io.prefixesWith(CASE_TENSORS);
  if (prefixes.length === 0) yield failure(COMPONENT, 'cases', MODEL_RELATIVE_TOLERANCE, new Error(`${ioPath} holds no case (${CASE_TENSORS.join(', ')})`));
  for (const prefix of prefixes) {
    const label = caseLabel(prefix);
    const expected = io.float32(`${prefix}out_sample`);
    const tolerance = scaledTolerance(MODEL_RELATIVE_TOLERANCE, expected);
    try {
      const [batch, , height, width] = io.shape(`${prefix}sample`) as [number, number, number, number];
      const textLength = io.shape(`${prefix}encoder_hidden_states`)[1]!;
      const { graph } = buildUnetGraph(unet.plan, params, { batch, height, width, textLength, debug: true });
      const session = await openGraphSession(graph);
      try {
        const feeds = {
          [UNET_INPUTS.sample]: io.feed(`${prefix}sample`),
          [UNET_INPUTS.timestep]: io.feedPerRow(`${prefix}timestep`, batch),
          [UNET_INPUTS.encoderHiddenStates]: io.feed(`${prefix}encoder_hidden_states`),
        };
        const outputs = await session.run(feeds);
        yield compare(COMPONENT, label, outputs[UNET_OUTPUT]!, expected, tolerance);
        for (const name of io.namesUnder(`${prefix}debug.`)) {
          const reference = io.float32(`${prefix}debug.${name}`);
          const actual = outputs[`debug.${name}`];
          yield actual
            ? compare(COMPONENT, `${label}.debug.${name}`, actual, reference, scaledTolerance(MODEL_RELATIVE_TOLERANCE, reference))
            : failure(COMPONENT, `${label}.debug.${name}`, MODEL_RELATIVE_TOLERANCE, new Error('the graph has no such activation'));
        }
        if (io.has(`${prefix}timestep_f32`)) {
          const asFloat = await session.run({ ...feeds, [UNET_INPUTS.timestep]: io.feedPerRow(`${prefix}timestep_f32`, batch) });
          yield compare(COMPONENT, `${label}.timestep_f32`, asFloat[UNET_OUTPUT]!, expected, tolerance);
        }
      } finally {
        await session.release();
      }
    } catch (error) {
      yield failure(COMPONENT, label, tolerance, error);
    }
  }
}

export const unetParity: ParityCheck = {
  component: COMPONENT,
  appliesTo: (dir) => fixtureFile(dir, COMPONENT, 'io.safetensors') !== null,
  run: runUnetParity,
};

/** A check never throws: a fixture or checkpoint that cannot even be opened is one failed `<setup>` result. */
async function* runUnetParity(dir: string): AsyncIterable<ParityResult> {
  try {
    yield* runUnetParityUnchecked(dir);
  } catch (error) {
    yield failure(COMPONENT, '<setup>', MODEL_RELATIVE_TOLERANCE, error);
  }
}
