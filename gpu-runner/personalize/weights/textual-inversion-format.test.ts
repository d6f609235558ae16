// Textual-inversion weight files: the native file and the kohya/A1111 embedding, written and read back.
import { describe, expect, it } from 'vitest';
import { float16BitsToFloat32, float32ToFloat16Bits, parseSafetensors, serializeSafetensors } from '../../io/safetensors.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { weightsOf } from '../finetune/fast-finetune.ts';
import { identifierTokenIds } from '../finetune/textual-inversion.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { exportLora } from './lora-export.ts';
import { decodeNativeWeights, encodeNativeWeights, WeightFileError } from './native-format.ts';
import { EMBEDDING_TENSOR, exportTextualInversion, importTextualInversion } from './textual-inversion-format.ts';

const model = tinyPersonalizationModel();
const hidden = model.textEncoder.config.hiddenSize;
const structure = { unet: model.unet.plan, textEncoder: model.textEncoder.config };
const tokenIds = identifierTokenIds(model, '[V]');
const embedding = fillGaussianFloat32(namedRng(5, 'ti'), tokenIds.length * hidden, 0.3);
const weights = weightsOf(model, 'textual-inversion', 12, { textualInversion: { token: '[V]', tokenIds, embedding } });

describe('textual-inversion weight files', () => {
  it('kohya/A1111 embedding: one emb_params [vectors, hidden] tensor, token and base model in the metadata, exact at fp32', () => {
    const bytes = exportTextualInversion(weights, 'F32');
    const { header, tensors } = parseSafetensors(bytes);
    expect([...tensors.keys()]).toEqual([EMBEDDING_TENSOR]);
    expect(tensors.get(EMBEDDING_TENSOR)).toMatchObject({ dtype: 'F32', shape: [tokenIds.length, hidden] });
    expect(header.metadata).toMatchObject({ token: '[V]', base_model_id: 'sd15-tiny', base_model_sha256: '0'.repeat(64), method: 'textual-inversion', steps: '12' });
    const back = importTextualInversion(bytes);
    expect(back).toMatchObject({ token: '[V]', tokenIds, vectors: tokenIds.length, hidden });
    expect(back.embedding).toEqual(embedding);
  });

  it('at fp16 the rows come back as their nearest half-precision values', () => {
    const back = importTextualInversion(exportTextualInversion(weights, 'F16'));
    expect(back.embedding).toEqual(float16BitsToFloat32(float32ToFloat16Bits(embedding)));
    let worst = 0;
    embedding.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - back.embedding[i]!) / Math.max(Math.abs(v), 1e-3))));
    expect(worst).toBeLessThanOrEqual(2 ** -11);
  });

  it('the native file keeps the rows, their token ids and the token, and reads back against the base model', () => {
    for (const dtype of ['F32', 'F16'] as const) {
      const back = decodeNativeWeights(encodeNativeWeights(weights, dtype), structure);
      expect(back.meta).toEqual(weights.meta);
      expect(back.textualInversion).toMatchObject({ token: '[V]', tokenIds });
      expect(back.textualInversion!.embedding).toEqual(dtype === 'F32' ? embedding : float16BitsToFloat32(float32ToFloat16Bits(embedding)));
      expect(back.lidb).toBeUndefined();
      expect(back.relax).toBeUndefined();
    }
  });

  it('reads embeddings made elsewhere: a diffusers learned_embeds file (one tensor named by its token) and a 1-D vector', () => {
    const diffusers = importTextualInversion(serializeSafetensors({ '<cat-toy>': { dtype: 'F32', shape: [2, hidden], data: embedding.slice(0, 2 * hidden) } }));
    expect(diffusers).toMatchObject({ token: '<cat-toy>', tokenIds: undefined, vectors: 2, hidden });
    const single = importTextualInversion(serializeSafetensors({ [EMBEDDING_TENSOR]: { dtype: 'F32', shape: [hidden], data: embedding.slice(0, hidden) } }));
    expect(single).toMatchObject({ token: undefined, vectors: 1, hidden });
  });

  it('refuses what is not an embedding, and LoRA export of weights that hold none, with clear errors', () => {
    expect(() => importTextualInversion(new TextEncoder().encode('not safetensors'))).toThrow(WeightFileError);
    const twoTensors = serializeSafetensors({
      a: { dtype: 'F32', shape: [1, hidden], data: embedding.slice(0, hidden) },
      b: { dtype: 'F32', shape: [1, hidden], data: embedding.slice(0, hidden) },
    });
    expect(() => importTextualInversion(twoTensors)).toThrow(/exactly one tensor/);
    const badIds = serializeSafetensors({ [EMBEDDING_TENSOR]: { dtype: 'F32', shape: [1, hidden], data: embedding.slice(0, hidden) } }, { token_ids: '[1, 2]' });
    expect(() => importTextualInversion(badIds)).toThrow(/one token id per vector/);
    expect(() => exportTextualInversion(weightsOf(model, 'hyper-only', 0, {}))).toThrow(/no textual-inversion embedding/);
    expect(() => exportLora(weights, model.bases, 'kohya')).toThrow(/no LoRA-expressible term/);
  });
});
