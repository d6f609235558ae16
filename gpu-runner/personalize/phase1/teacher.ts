// The base model's own noise prediction, as phase 1's teacher: given a noisy latent and a caption that describes the
// person in words ("a photo of a face with red hair, …"), the base model's ε is what the personalized model should
// predict for the same latent under the identifier caption ("a photo of a sks face, …"). Unlike the sampled noise,
// this target has no variance from the draw, so the gradient carries the identity alone (docs/hypernetwork.md).
import { CLIP_MAX_LENGTH } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import { buildClipTextGraph, CLIP_TEXT_INPUT } from '../../models/clip-text/build.ts';
import { SESSION_KINDS } from '../../models/session-kinds.ts';
import { buildUnetGraph, UNET_INPUTS } from '../../models/unet/build.ts';
import { saveModel, serializeModel } from '../../onnx/index.ts';
import { createSessionRunner, float32Data, float32Tensor, int64Tensor } from '../../onnx/runtime/index.ts';
import { BindingGraph } from '../finetune/diffusion-loss-graph.ts';
import { trainingLayout } from '../finetune/fast-finetune.ts';
import type { PersonalizationModel } from '../model.ts';

const TEACHER_OUTPUT = 'teacher_noise';

export interface NoiseTeacher {
  /** ε̂ of the base model for `batch` samples: ids [batch, 77], noisy latents [batch, C, H, W], timesteps [batch]. */
  predict(ids: readonly number[], noisy: Float32Array, timesteps: Float32Array): Promise<Float32Array>;
  close(): Promise<void>;
}

export async function openNoiseTeacher(pack: PersonalizationModel, batch: number, threads?: number): Promise<NoiseTeacher> {
  // External weights (full-size packs) are referenced from the folder holding both networks, where the graph is saved.
  const { model, modelDir } = trainingLayout(pack);
  const g = new BindingGraph('phase1_teacher');
  const text = buildClipTextGraph(model.textEncoder.config, model.paramSources.textEncoder, { batch, length: CLIP_MAX_LENGTH, graph: g });
  g.bindInput(UNET_INPUTS.encoderHiddenStates, text.lastHiddenState);
  const side = model.resolution / 2 ** (model.vae.plan.config.blockOutChannels.length - 1);
  const channels = model.unet.plan.config.inChannels;
  const unet = buildUnetGraph(model.unet.plan, model.paramSources.unet, { batch, height: side, width: side, textLength: CLIP_MAX_LENGTH, graph: g });
  g.outputs.length = 0;
  g.output(unet.output, TEACHER_OUTPUT);
  // The session host's provider and threads, like every other session (the teacher is the base UNet).
  const session = await createSessionRunner(modelDir ? saveModel(g, modelDir, `.hdb-phase1-teacher-${batch}.onnx`) : serializeModel(g), {
    kind: SESSION_KINDS.unet,
    ...(threads ? { intraOpNumThreads: threads } : {}),
  });
  return {
    async predict(ids, noisy, timesteps) {
      if (ids.length !== batch * CLIP_MAX_LENGTH) throw new Error(`teacher: ${ids.length} token ids for a batch of ${batch}`);
      const out = await session.run({
        [CLIP_TEXT_INPUT]: int64Tensor(BigInt64Array.from(ids, (id) => BigInt(id)), [batch, CLIP_MAX_LENGTH]),
        [UNET_INPUTS.sample]: float32Tensor(noisy, [batch, channels, side, side]),
        [UNET_INPUTS.timestep]: float32Tensor(timesteps, [batch]),
      });
      return float32Data(out, TEACHER_OUTPUT);
    },
    close: () => session.close(),
  };
}
