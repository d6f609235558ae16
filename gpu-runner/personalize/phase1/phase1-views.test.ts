// Phase 1 with captioned views, a teacher and an attribute probe (docs/hypernetwork.md), on the tiny model: the
// pieces that made the world pack's hypernetwork carry identity, each checked on its own.
import { describe, expect, it } from 'vitest';
import { CLIP_MAX_LENGTH } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import { openGraphSession } from '../../models/session.ts';
import { fillGaussianFloat32, namedRng } from '../../random/index.ts';
import { PROMPT_CONTEXTS } from '../../world/benchmark/prompts.ts';
import { captionWithIdentifier } from '../../world/caption.ts';
import { buildDiffusionLossGraph, LOSS_INPUTS, LOSS_OUTPUT } from '../finetune/diffusion-loss-graph.ts';
import { parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from '../hypernetwork/config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from '../hypernetwork/inventory.ts';
import { createPersonalizationModel } from '../model.ts';
import { tinyModelComponents } from '../testing/tiny-model.ts';
import { attributeAccuracy } from './attribute-probe.ts';
import { type LabelledFace, pretrainFaceEncoder } from './pretrain-encoder.ts';
import { openNoiseTeacher } from './teacher.ts';
import { preparePhase1Subject, preparePhase1View, trainHypernetwork } from './train-hypernetwork.ts';
import { WORLD_ATTRIBUTE_GROUPS, worldPhase1Identities } from '../../world/phase1-identities.ts';

const components = tinyModelComponents();
const base = createPersonalizationModel(components);
const config = parseHypernetworkConfig({ ...TINY_HYPERNETWORK_CONFIG, faceSkip: true });
const heads = headLayouts(base.layers, base.lidb);
const inventory = hypernetworkInventory(config, heads);
const model = createPersonalizationModel({ ...components, hypernetwork: { config, params: initHypernetworkParams(config, inventory, 5, heads) } });

describe('hypernetwork initialization for phase 1', () => {
  it("starts each head where LiDB from zero starts: A_train N(0, 1/a'), B_train 0 (ΔW = 0, off the saddle)", () => {
    const params = initHypernetworkParams(config, inventory, 5, heads);
    const plain = initHypernetworkParams(config, inventory, 5);
    heads.forEach((head, i) => {
      const bias = params.get(`heads.${i}.bias`)!;
      expect(Array.from(bias.subarray(head.aSize))).toEqual(new Array(head.bSize).fill(0));
      expect(Array.from(plain.get(`heads.${i}.bias`)!)).toEqual(new Array(head.aSize + head.bSize).fill(0));
      expect(params.get(`heads.${i}.weight`)).toEqual(plain.get(`heads.${i}.weight`));
    });
    const a = heads.flatMap((head, i) => Array.from(params.get(`heads.${i}.bias`)!.subarray(0, head.aSize), (v) => v * Math.sqrt(head.aShape[1])));
    const variance = a.reduce((s, v) => s + v * v, 0) / a.length;
    expect(variance).toBeGreaterThan(0.8);
    expect(variance).toBeLessThan(1.2);
  });

  it('adds the face skip path only when configured', () => {
    expect(inventory.some((p) => p.name === 'face_skip.weight')).toBe(true);
    expect(hypernetworkInventory(parseHypernetworkConfig(TINY_HYPERNETWORK_CONFIG), heads).some((p) => p.name.startsWith('face_skip'))).toBe(false);
  });
});

describe('the noise teacher', () => {
  it("is the base model's own prediction: the diffusion loss of the unadapted model against it is 0 for the same caption", async () => {
    const batch = 2;
    const teacher = await openNoiseTeacher(base, batch, 1);
    const built = buildDiffusionLossGraph(base, { lidb: 'none', batch });
    const session = await openGraphSession(built.graph, { threads: 1 });
    try {
      const ids = [...base.tokenizer.tokenize('a photo of a face'), ...base.tokenizer.tokenize('a sketch of a face on a red background')];
      const [, c, h, w] = built.latentShape;
      const noisy = fillGaussianFloat32(namedRng(1, 'teacher-test'), batch * c * h * w);
      const timesteps = Float32Array.from([10, 700]);
      const predicted = await teacher.predict(ids, noisy, timesteps);
      expect(predicted.every(Number.isFinite)).toBe(true);
      const run = (target: Float32Array) =>
        session.run({
          [LOSS_INPUTS.inputIds]: { dtype: 'int64', dims: [batch, CLIP_MAX_LENGTH], data: BigInt64Array.from(ids, BigInt) },
          [LOSS_INPUTS.noisyLatents]: { dtype: 'float32', dims: [...built.latentShape], data: noisy },
          [LOSS_INPUTS.timestep]: { dtype: 'float32', dims: [batch], data: timesteps },
          [LOSS_INPUTS.target]: { dtype: 'float32', dims: [...built.latentShape], data: target },
        });
      expect((await run(predicted))[LOSS_OUTPUT]![0]).toBeLessThan(1e-10);
      expect((await run(new Float32Array(predicted.length)))[LOSS_OUTPUT]![0]).toBeGreaterThan(1e-4);
      await expect(teacher.predict(ids.slice(CLIP_MAX_LENGTH), noisy, timesteps)).rejects.toThrow(/token ids for a batch of 2/);
    } finally {
      await teacher.close();
      await session.release();
    }
  });
});

describe('the attribute probe', () => {
  it('scores accuracy per (face, group)', () => {
    // Two faces, groups [2, 3]: face 0 right on both, face 1 right on the first only.
    const labels = Float32Array.from([1, 0, 0, 0, 1, 0, 1, 1, 0, 0]);
    const logProbs = Float32Array.from([-0.1, -2, -3, -3, -0.1, -2, -0.1, -3, -0.1, -3]);
    expect(attributeAccuracy(logProbs, labels, [2, 3])).toBe(0.75);
  });

  it('pretrains the encoder to read a labelled attribute, changing only encoder parameters', async () => {
    const size = config.encoder.imageSize;
    // The label is which half of the image is bright: readable from pixels, not from a constant.
    const face = (index: number): LabelledFace => {
      const left = index % 2 === 0;
      const pixels = new Float32Array(3 * size * size);
      const rng = namedRng(3, `face/${index}`);
      for (let i = 0; i < pixels.length; i++) pixels[i] = ((i % size) < size / 2 === left ? 1 : -1) + 0.3 * (rng.nextBelow(1000) / 1000 - 0.5);
      return { pixels, labels: Float32Array.from(left ? [1, 0] : [0, 1]) };
    };
    const faces = Array.from({ length: 16 }, (_, i) => face(i));
    const validation = Array.from({ length: 8 }, (_, i) => face(100 + i));
    const result = await pretrainFaceEncoder(config, model.hypernetwork!.params, faces, { steps: 40, batchSize: 8, learningRate: 3e-3, groups: [2], validation, validationEvery: 40 });
    expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]!);
    // Chance is 0.5; a few dozen steps on 16 faces read the bright half on most held-out faces.
    expect(result.validation.at(-1)!.accuracy).toBeGreaterThanOrEqual(0.75);
    for (const [name, value] of model.hypernetwork!.params) {
      if (name.startsWith('encoder.')) continue;
      expect(result.params.get(name)).toBe(value);
    }
    expect(result.params.get('encoder.patch_embed.proj.weight')).not.toEqual(model.hypernetwork!.params.get('encoder.patch_embed.proj.weight'));
    expect([...result.params.keys()].some((name) => name.startsWith('attribute_probe'))).toBe(false);
    await expect(pretrainFaceEncoder(config, model.hypernetwork!.params, [{ pixels: new Float32Array(3), labels: Float32Array.from([1, 0]) }], { steps: 1, batchSize: 1, learningRate: 1e-3, groups: [2] })).rejects.toThrow(/the encoder takes/);
  });
});

describe('phase-1 data of the world', () => {
  it('gives several input photos and captioned views per identity, never in a benchmark context, with one-hot labels', () => {
    const people = worldPhase1Identities('train', 3, { inputs: 2, views: 6, identifier: 'sks' });
    const heldOutCaptions = PROMPT_CONTEXTS.map((context) => captionWithIdentifier('sks', context));
    expect(people).toHaveLength(3);
    const classes = WORLD_ATTRIBUTE_GROUPS.reduce((n, c) => n + c, 0);
    for (const person of people) {
      expect(person.inputs).toHaveLength(2);
      expect(person.views).toHaveLength(6);
      expect(person.labels).toHaveLength(classes);
      expect(person.labels.reduce((n, v) => n + v, 0)).toBe(WORLD_ATTRIBUTE_GROUPS.length);
      for (const view of person.views) {
        expect(view.caption).toContain('sks face');
        expect(view.description).not.toContain('sks');
        expect(view.description).toContain('a face with');
        expect(heldOutCaptions).not.toContain(view.caption);
      }
    }
    expect(worldPhase1Identities('train', 3, { inputs: 2, views: 6, identifier: 'sks' })[1]!.views[0]!.image.data).toEqual(people[1]!.views[0]!.image.data);
  });
});

describe('phase 1 on captioned views with a teacher and the attribute probe', () => {
  it('trains: finite losses, the probe loss reported and falling, validation on views; views change what is fitted', async () => {
    const people = worldPhase1Identities('train', 2, { inputs: 1, views: 3, identifier: 'sks' });
    const subjects = await Promise.all(
      people.map(async (person) => {
        const views = await Promise.all(person.views.map((v) => preparePhase1View(model, v.image, v.caption, v.description)));
        return preparePhase1Subject(model, person.inputs[0]!, { views, labels: person.labels });
      }),
    );
    const attributes: number[] = [];
    const options = { steps: 8, batchSize: 2, learningRate: 3e-3, gamma: 1, attributeGroups: WORLD_ATTRIBUTE_GROUPS, teacherWeight: 1, validationEvery: 8 } as const;
    const result = await trainHypernetwork(model, subjects, subjects.slice(0, 1), { ...options, onProgress: (p) => attributes.push(p.attributeLoss!) });
    expect(result.losses.every(Number.isFinite)).toBe(true);
    expect(attributes.every(Number.isFinite)).toBe(true);
    expect(attributes.at(-1)!).toBeLessThan(attributes[0]!);
    expect(result.validation).toHaveLength(1);
    expect([...result.params.keys()].some((name) => name.startsWith('attribute_probe'))).toBe(true);
    const withoutTeacher = await trainHypernetwork(model, subjects, [], { ...options, steps: 2, teacherWeight: 0 });
    expect(withoutTeacher.losses[0]).not.toBe(result.losses[0]);
    await expect(trainHypernetwork(model, subjects.map((s) => ({ ...s, labels: undefined })), [], { ...options, steps: 1 })).rejects.toThrow(/attribute labels/);
  });
});
