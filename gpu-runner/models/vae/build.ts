// AutoencoderKL as two graphs (diffusers v0.24 autoencoder_kl.py, vae.py): encode = encoder → quant_conv → the
// diagonal Gaussian's mean / log-variance (clamped to [−30, 20]) / std; decode = post_quant_conv → decoder.
// The latent scaling factor belongs to the pipeline, never to the VAE; `scaledLatents` divides by it in-graph as a
// pipeline would (`vae.decode(latents / scaling_factor)`).
import { add, attention, chunk, div, exp, Graph, max, min, mul, pad, reshape, silu, transpose, upsampleNearestTo, type Value } from '../../onnx/index.ts';
import { buildResnet } from '../blocks/resnet.ts';
import { type LinearAdapter, ModelBuilder } from '../layers.ts';
import type { ParamSource } from '../params.ts';
import type { InferencePrecision } from '../precision.ts';
import { VAE_NORM_EPS, type VaeMidBlockPlan, type VaePlan } from './plan.ts';

/** DiagonalGaussianDistribution clamps the log-variance (vae.py). */
export const LOGVAR_MIN = -30;
export const LOGVAR_MAX = 20;

/** `meanScaled` = mean × scaling_factor: the initial latents a pipeline would use for img2img, minus sampling noise. */
export const VAE_ENCODE = { input: 'image', mean: 'mean', logvar: 'logvar', std: 'std', meanScaled: 'mean_scaled' } as const;
export const VAE_DECODE = { input: 'latents', output: 'sample' } as const;

export interface VaeGraphOptions {
  batch: number;
  /** Image height/width for encode; latent height/width for decode. */
  height: number;
  width: number;
  debug?: boolean;
  adapters?: readonly LinearAdapter[];
  graph?: Graph;
  /** 'fp16' for sampling on CUDA (`../precision.ts`); default 'fp32', which every training graph uses. */
  precision?: InferencePrecision;
}

export interface VaeGraph {
  graph: Graph;
  builder: ModelBuilder;
}

/** The mid-block attention: GroupNorm, one head as wide as the channels, biased q/k/v/out, residual (attention_processor.py). */
function midAttention(mb: ModelBuilder, mid: VaeMidBlockPlan, x: Value): Value {
  const { path, channels, groups, eps } = mid.attention;
  const [b, c, h, w] = x.staticShape as [number, number, number, number];
  const tokens = reshape(transpose(mb.groupNorm(`${path}.group_norm`, x, groups, eps), [0, 2, 3, 1]), [b, h * w, c]);
  const linear = (proj: string) => ({ name: `${path}.${proj}`, inFeatures: channels, outFeatures: channels, bias: true, kind: `vae.${proj}` });
  const attended = attention(mb.linear(linear('to_q'), tokens), mb.linear(linear('to_k'), tokens), mb.linear(linear('to_v'), tokens), { heads: 1 });
  const out = transpose(reshape(mb.linear(linear('to_out.0'), attended), [b, h, w, c]), [0, 3, 1, 2]);
  return add(out, x);
}

function midBlock(mb: ModelBuilder, mid: VaeMidBlockPlan, x: Value): Value {
  return buildResnet(mb, mid.resnets[1], midAttention(mb, mid, buildResnet(mb, mid.resnets[0], x)));
}

export function buildVaeEncoderGraph(plan: VaePlan, params: ParamSource, options: VaeGraphOptions): VaeGraph {
  const { config } = plan;
  const g = options.graph ?? new Graph('vae_encoder');
  const mb = new ModelBuilder(g, params, options.adapters ?? [], options.precision);
  const debug = (name: string, v: Value) => {
    if (options.debug) g.output(mb.leave(v), `debug.encode.${name}`);
  };
  const channels = config.blockOutChannels;
  const image = mb.enter(g.input(VAE_ENCODE.input, 'float32', [options.batch, config.inChannels, options.height, options.width]));

  let h = mb.conv2d('encoder.conv_in', image, channels[0]!, 3, { padding: 1 });
  debug('encoder.conv_in', h);
  for (const block of plan.encoder.downBlocks) {
    for (const resnet of block.resnets) h = buildResnet(mb, resnet, h);
    if (block.downsampler) {
      // `downsample_padding=0`: pad right and bottom by one, then a 3×3 stride-2 conv without padding (resnet.py).
      h = mb.conv2d(block.downsampler.path, pad(h, [0, 0, 0, 0, 0, 0, 1, 1]), block.downsampler.channels, 3, { stride: 2 });
    }
  }
  h = midBlock(mb, plan.encoder.midBlock, h);
  debug('encoder.mid_block', h);
  h = silu(mb.groupNorm('encoder.conv_norm_out', h, config.normNumGroups, VAE_NORM_EPS));
  h = mb.conv2d('encoder.conv_out', h, plan.encoder.momentsChannels, 3, { padding: 1 });
  debug('encoder', h);
  // the distribution's clamp, exp and scaling in float32, as the outputs are
  const moments = mb.leave(mb.conv2d('quant_conv', h, plan.encoder.momentsChannels, 1));
  debug('quant_conv', moments);

  const [mean, rawLogvar] = chunk(moments, 2, 1) as [Value, Value];
  const logvar = min(max(rawLogvar, LOGVAR_MIN), LOGVAR_MAX);
  g.output(mean, VAE_ENCODE.mean);
  g.output(logvar, VAE_ENCODE.logvar);
  g.output(exp(mul(logvar, 0.5)), VAE_ENCODE.std);
  g.output(mul(mean, config.scalingFactor), VAE_ENCODE.meanScaled);
  return { graph: g, builder: mb };
}

export function buildVaeDecoderGraph(
  plan: VaePlan,
  params: ParamSource,
  options: VaeGraphOptions & { scaledLatents?: boolean },
): VaeGraph {
  const { config } = plan;
  const g = options.graph ?? new Graph('vae_decoder');
  const mb = new ModelBuilder(g, params, options.adapters ?? [], options.precision);
  const debug = (name: string, v: Value) => {
    if (options.debug) g.output(mb.leave(v), `debug.decode.${name}`);
  };
  const channels = config.blockOutChannels;
  const input = g.input(VAE_DECODE.input, 'float32', [options.batch, config.latentChannels, options.height, options.width]);
  const latents = mb.enter(options.scaledLatents ? div(input, config.scalingFactor) : input);

  const z = mb.conv2d('post_quant_conv', latents, config.latentChannels, 1);
  debug('post_quant_conv', z);
  let h = mb.conv2d('decoder.conv_in', z, channels[channels.length - 1]!, 3, { padding: 1 });
  debug('decoder.conv_in', h);
  h = midBlock(mb, plan.decoder.midBlock, h);
  debug('decoder.mid_block', h);
  for (const block of plan.decoder.upBlocks) {
    for (const resnet of block.resnets) h = buildResnet(mb, resnet, h);
    if (block.upsampler) {
      const [, , height, width] = h.staticShape as [number, number, number, number];
      h = mb.conv2d(block.upsampler.path, upsampleNearestTo(h, 2 * height, 2 * width), block.upsampler.channels, 3, { padding: 1 });
    }
  }
  h = silu(mb.groupNorm('decoder.conv_norm_out', h, config.normNumGroups, VAE_NORM_EPS));
  g.output(mb.leave(mb.conv2d('decoder.conv_out', h, config.outChannels, 3, { padding: 1 })), VAE_DECODE.output);
  return { graph: g, builder: mb };
}
