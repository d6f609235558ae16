// Full-size packs keep the UNet and text-encoder weights external (protobuf stops at 2 GiB): the finetune and the
// baselines must give the same weights as with inline copies. The tiny pack is loaded both ways (forced placement).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureTinyPack } from '../pack/write-tiny-pack.ts';
import { loadModelPack } from '../pack/model-pack.ts';
import { DEFAULT_WORLD, sampleAt, toRgbBytes } from '../world/index.ts';
import { fastFinetune, personalize, predict } from './api.ts';
import { trainingLayout } from './finetune/fast-finetune.ts';
import { preparePhase1Subject, preparePhase1View, trainHypernetwork } from './phase1/train-hypernetwork.ts';
import { WORLD_ATTRIBUTE_GROUPS, worldPhase1Identities } from '../world/phase1-identities.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-external-pack-'));
const packDir = ensureTinyPack(join(root, 'sd15-tiny'));
const ignore = () => undefined;
const inline = await loadModelPack(packDir, ignore, 'inline');
const external = await loadModelPack(packDir, ignore, 'external');
const sample = sampleAt(DEFAULT_WORLD, 'train', 0);
const image = { width: sample.image.width, height: sample.image.height, data: toRgbBytes(sample.image) };
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('personalization with external UNet and text-encoder weights', () => {
  it('references both networks from the pack root, and leaves inline models alone', () => {
    expect(trainingLayout(inline.model).modelDir).toBeUndefined();
    expect(trainingLayout(external.model).modelDir).toBe(packDir);
  });

  it('fastFinetune gives the same relax term as with inline weights, its gradient graph saved in the pack root', async () => {
    const init = await predict(inline.model, { image });
    const options = { steps: 2, rank: 2, relax: 'lora' as const, learningRate: 1e-2, seed: 5 };
    const a = await fastFinetune(inline.model, { image }, init, options);
    const b = await fastFinetune(external.model, { image }, init, options);
    expect(b.report.losses).toEqual(a.report.losses);
    expect(b.weights.relax).toEqual(a.weights.relax);
    expect(readdirSync(packDir).filter((f) => /^trainer-[0-9a-f]{16}\.onnx$/.test(f))).toHaveLength(1);
  });

  it.each(['lidb-zero', 'dreambooth-lora', 'textual-inversion'] as const)('%s gives the same weights as with inline weights', async (method) => {
    const options = { method, steps: 2, learningRate: 1e-2, seed: 6 };
    const a = await personalize(inline.model, { image }, options);
    const b = await personalize(external.model, { image }, options);
    expect(b.report!.losses).toEqual(a.report!.losses);
    expect(b.weights.lidb).toEqual(a.weights.lidb);
    expect(b.weights.relax).toEqual(a.weights.relax);
    expect(b.weights.textualInversion).toEqual(a.weights.textualInversion);
  });
});

describe('phase 1 with external UNet and text-encoder weights', () => {
  it('trains the hypernetwork (views, teacher, attribute probe) with the same losses as with inline weights', async () => {
    const run = async (pack: typeof inline) => {
      const people = worldPhase1Identities('train', 2, { inputs: 1, views: 2, identifier: 'sks' });
      const subjects = await Promise.all(
        people.map(async (person) => {
          const views = await Promise.all(person.views.map((v) => preparePhase1View(pack.model, v.image, v.caption, v.description)));
          return preparePhase1Subject(pack.model, person.inputs[0]!, { views, labels: person.labels });
        }),
      );
      return trainHypernetwork(pack.model, subjects, [], { steps: 2, batchSize: 2, learningRate: 1e-3, gamma: 0.1, attributeGroups: WORLD_ATTRIBUTE_GROUPS, teacherWeight: 1 });
    };
    const a = await run(inline);
    const b = await run(external);
    expect(b.losses).toEqual(a.losses);
    expect(b.params.get('heads.0.weight')).toEqual(a.params.get('heads.0.weight'));
  });
});
