// CLIP text encoder parity: for every prefix P with P.input_ids, P.last_hidden_state, P.pooler_output in
// `text_encoder/io.safetensors`: both outputs and each `P.debug.hidden_states.k`.
import { join } from 'node:path';
import { CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS, buildClipTextGraph } from '../models/clip-text/build.ts';
import { openTextEncoderFolder } from '../models/checkpoint/diffusers-folder.ts';
import { inlineParams } from '../models/params.ts';
import { openGraphSession } from '../models/session.ts';
import { compare, failure, type ParityCheck, type ParityResult, scaledTolerance } from './check.ts';
import { caseLabel, FixtureTensors, fixtureFile, MODEL_RELATIVE_TOLERANCE } from './model-fixtures.ts';

const COMPONENT = 'text_encoder';

async function* runTextEncoderParityUnchecked(dir: string): AsyncIterable<ParityResult> {
  const ioPath = fixtureFile(dir, COMPONENT, 'io.safetensors');
  if (!ioPath) return;
  const io = FixtureTensors.load(ioPath);
  const encoder = openTextEncoderFolder(join(dir, COMPONENT));
  const params = inlineParams(encoder.weights);
  const prefixes = io.prefixesWith([CLIP_TEXT_INPUT, CLIP_TEXT_OUTPUTS.lastHiddenState, CLIP_TEXT_OUTPUTS.pooled]);
  if (prefixes.length === 0) yield failure(COMPONENT, 'cases', MODEL_RELATIVE_TOLERANCE, new Error(`${ioPath} holds no input_ids case`));
  for (const prefix of prefixes) {
    const label = caseLabel(prefix);
    try {
      const ids = io.get(`${prefix}${CLIP_TEXT_INPUT}`);
      if (ids.dtype !== 'I64') throw new Error(`${CLIP_TEXT_INPUT} is ${ids.dtype}, expected I64`);
      const [batch, length] = ids.shape as [number, number];
      const { graph } = buildClipTextGraph(encoder.config, params, { batch, length, debug: true });
      const session = await openGraphSession(graph);
      try {
        const outputs = await session.run({ [CLIP_TEXT_INPUT]: { dtype: 'int64', dims: [batch, length], data: ids.data as BigInt64Array } });
        const names = [
          ...Object.values(CLIP_TEXT_OUTPUTS),
          ...io.namesUnder(`${prefix}debug.`).map((name) => `debug.${name}`),
        ];
        for (const name of names) {
          const expected = io.float32(`${prefix}${name}`);
          const actual = outputs[name];
          const caseName = name === CLIP_TEXT_OUTPUTS.lastHiddenState ? label : `${label}.${name}`;
          yield actual
            ? compare(COMPONENT, caseName, actual, expected, scaledTolerance(MODEL_RELATIVE_TOLERANCE, expected))
            : failure(COMPONENT, caseName, MODEL_RELATIVE_TOLERANCE, new Error('the graph has no such output'));
        }
      } finally {
        await session.release();
      }
    } catch (error) {
      yield failure(COMPONENT, label, MODEL_RELATIVE_TOLERANCE, error);
    }
  }
}

export const textEncoderParity: ParityCheck = {
  component: COMPONENT,
  appliesTo: (dir) => fixtureFile(dir, COMPONENT, 'io.safetensors') !== null,
  run: runTextEncoderParity,
};

/** A check never throws: a fixture or checkpoint that cannot even be opened is one failed `<setup>` result. */
async function* runTextEncoderParity(dir: string): AsyncIterable<ParityResult> {
  try {
    yield* runTextEncoderParityUnchecked(dir);
  } catch (error) {
    yield failure(COMPONENT, '<setup>', MODEL_RELATIVE_TOLERANCE, error);
  }
}
