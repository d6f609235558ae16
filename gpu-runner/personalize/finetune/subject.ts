// The subject image as the diffusion loss sees it: face crop at the VAE's resolution in [−1, 1], encoded once to the
// latent distribution's mean and std; each step draws x₀ = (mean + std·z)·scaling_factor (DreamBooth samples the
// latent distribution every step, `latent_dist.sample()`).
import { SESSION_KINDS } from '../../models/session-kinds.ts';
import { isExternal, saveModel, serializeModel } from '../../onnx/index.ts';
import { createSessionRunner, float32Data, float32Tensor, liveRunner, type SessionRunner } from '../../onnx/runtime/index.ts';
import { buildVaeEncoderGraph, VAE_ENCODE } from '../../models/vae/build.ts';
import { type FaceBox, preprocessFace, type RgbPixels } from '../face/preprocess.ts';
import type { PersonalizationModel } from '../model.ts';

/** The VAE takes images in [−1, 1]: (v/255 − 0.5)/0.5. */
const VAE_PIXEL_NORMALIZATION = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } as const;

export interface EncodedSubject {
  readonly mean: Float32Array;
  readonly std: Float32Array;
  readonly shape: readonly [number, number, number, number];
  readonly scalingFactor: number;
}

/**
 * One VAE-encoder session per loaded model (resolution is fixed per model), built on first use, on the session host
 * with the process's provider and threads.
 */
const encoderSessions = new WeakMap<PersonalizationModel, Promise<SessionRunner>>();

function encoderSession(model: PersonalizationModel): Promise<SessionRunner> {
  return liveRunner(encoderSessions, model, () => {
    const side = model.resolution;
    const { graph } = buildVaeEncoderGraph(model.vae.plan, model.paramSources.vae, { batch: 1, height: side, width: side });
    // Weights referenced in place (external data, full-size packs) resolve relative to the model file: save it beside them.
    const external = [...graph.initializers.values()].some(isExternal);
    return createSessionRunner(external ? saveModel(graph, model.vae.dir, `.hdb-vae-encoder-${side}.onnx`) : serializeModel(graph), {
      kind: SESSION_KINDS.vaeEncoder,
    });
  });
}

export async function encodeSubject(model: PersonalizationModel, image: Uint8Array | RgbPixels, box?: FaceBox): Promise<EncodedSubject> {
  const side = model.resolution;
  const face = await preprocessFace(image, { size: side, ...VAE_PIXEL_NORMALIZATION, ...(box ? { box } : {}) });
  const session = await encoderSession(model);
  const out = await session.run({ [VAE_ENCODE.input]: float32Tensor(face.pixels, [1, 3, side, side]) });
  const latentSide = side / 2 ** (model.vae.plan.config.blockOutChannels.length - 1);
  return {
    mean: float32Data(out, VAE_ENCODE.mean),
    std: float32Data(out, VAE_ENCODE.std),
    shape: [1, model.vae.plan.config.latentChannels, latentSide, latentSide],
    scalingFactor: model.vae.plan.config.scalingFactor,
  };
}
