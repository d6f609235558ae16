// The UNet2DConditionModel forward pass (diffusers v0.24 unet_2d_condition.py `forward`, without the ControlNet,
// adapter, class and added-condition branches the SD 1.5 config leaves unused), as an ONNX graph.
import { add, concat, Graph, mul, pad, silu, timestepEmbedding, upsampleNearestTo, type Value } from '../../onnx/index.ts';
import { buildResnet } from '../blocks/resnet.ts';
import { buildTransformer2D } from '../blocks/transformer.ts';
import { type LinearAdapter, ModelBuilder } from '../layers.ts';
import type { ParamSource } from '../params.ts';
import type { InferencePrecision } from '../precision.ts';
import type { UnetPlan } from './plan.ts';

export const UNET_INPUTS = { sample: 'sample', timestep: 'timestep', encoderHiddenStates: 'encoder_hidden_states' } as const;
export const UNET_OUTPUT = 'out_sample';

export interface UnetShapes {
  batch: number;
  height: number;
  width: number;
  /** Text tokens in `encoder_hidden_states` (77 for SD 1.5). */
  textLength: number;
}

export interface UnetGraphOptions extends UnetShapes {
  adapters?: readonly LinearAdapter[];
  /** Also output the intermediate activations the reference fixtures hold, named `debug.<name>`. */
  debug?: boolean;
  /** Build into this graph (to compose with adapters, a loss, other models); by default a new graph. */
  graph?: Graph;
  /** 'fp16' for sampling on CUDA (`../precision.ts`); default 'fp32', which every training graph uses. */
  precision?: InferencePrecision;
}

export interface UnetGraph {
  graph: Graph;
  builder: ModelBuilder;
  output: Value;
}

export function buildUnetGraph(plan: UnetPlan, params: ParamSource, options: UnetGraphOptions): UnetGraph {
  const { config } = plan;
  const g = options.graph ?? new Graph('unet');
  const mb = new ModelBuilder(g, params, options.adapters ?? [], options.precision);
  const { batch, height, width, textLength } = options;
  const debug = (name: string, v: Value) => {
    if (options.debug) g.output(mb.leave(v), `debug.${name}`);
  };

  let sample = mb.enter(g.input(UNET_INPUTS.sample, 'float32', [batch, config.inChannels, height, width]));
  const timestep = g.input(UNET_INPUTS.timestep, 'float32', [batch]);
  const context = mb.enter(g.input(UNET_INPUTS.encoderHiddenStates, 'float32', [batch, textLength, config.crossAttentionDim[0]!]));
  if (new Set(config.crossAttentionDim).size !== 1) throw new Error('unet: per-block cross_attention_dim values must agree (one text encoder)');

  if (config.centerInputSample) sample = add(mul(sample, 2), -1);

  // float32 sin/cos, narrowed after: timesteps reach 999 and fp16's spacing there is 0.5, too coarse for the phase
  const timeProj = mb.enter(timestepEmbedding(timestep, plan.timeProjDim, { flipSinToCos: config.flipSinToCos, downscaleFreqShift: config.freqShift }));
  debug('time_proj', timeProj);
  const linear1 = { name: 'time_embedding.linear_1', inFeatures: plan.timeProjDim, outFeatures: plan.timeEmbedDim, bias: true, kind: 'time_embedding' };
  const linear2 = { name: 'time_embedding.linear_2', inFeatures: plan.timeEmbedDim, outFeatures: plan.timeEmbedDim, bias: true, kind: 'time_embedding' };
  const emb = mb.linear(linear2, silu(mb.linear(linear1, timeProj)));
  debug('time_embedding', emb);
  const tembActivated = silu(emb);

  let h = mb.conv2d('conv_in', sample, config.blockOutChannels[0]!, config.convInKernel, { padding: (config.convInKernel - 1) / 2 });
  debug('conv_in', h);
  const residuals: Value[] = [h];

  plan.downBlocks.forEach((block, i) => {
    block.resnets.forEach((resnet, j) => {
      h = buildResnet(mb, resnet, h, tembActivated);
      const attention = block.attentions[j];
      if (attention) h = buildTransformer2D(mb, attention, h, context);
      residuals.push(h);
    });
    if (block.downsampler) {
      const { path, channels, padding } = block.downsampler;
      // Downsample2D with padding 0 pads right and bottom by one instead (resnet.py).
      const input = padding === 0 ? pad(h, [0, 0, 0, 0, 0, 0, 1, 1]) : h;
      h = mb.conv2d(path, input, channels, 3, { stride: 2, padding });
      residuals.push(h);
    }
    debug(`down_blocks.${i}`, h);
  });

  const mid = plan.midBlock;
  h = buildResnet(mb, mid.resnets[0]!, h, tembActivated);
  mid.attentions.forEach((attention, j) => {
    h = buildTransformer2D(mb, attention, h, context);
    h = buildResnet(mb, mid.resnets[j + 1]!, h, tembActivated);
  });
  debug('mid_block', h);

  plan.upBlocks.forEach((block, i) => {
    block.resnets.forEach((resnet, j) => {
      const skip = residuals.pop();
      if (!skip) throw new Error(`unet: ${block.path} ran out of skip connections`);
      h = buildResnet(mb, resnet, concat([h, skip], 1), tembActivated);
      const attention = block.attentions[j];
      if (attention) h = buildTransformer2D(mb, attention, h, context);
    });
    if (block.upsampler) {
      // Upsample to the size of the skip connection the next block consumes first (diffusers' `upsample_size`).
      const next = residuals[residuals.length - 1];
      if (!next) throw new Error(`unet: ${block.path} has no skip connection to size its upsampling`);
      const [, , th, tw] = next.staticShape as [number, number, number, number];
      h = mb.conv2d(block.upsampler.path, upsampleNearestTo(h, th, tw), block.upsampler.channels, 3, { padding: 1 });
    }
    debug(`up_blocks.${i}`, h);
  });
  if (residuals.length > 0) throw new Error(`unet: ${residuals.length} skip connections left unused`);

  h = silu(mb.groupNorm('conv_norm_out', h, config.normNumGroups, config.normEps));
  debug('conv_out_input', h);
  const out = mb.conv2d('conv_out', h, config.outChannels, config.convOutKernel, { padding: (config.convOutKernel - 1) / 2 });
  const output = g.output(mb.leave(out), UNET_OUTPUT);
  return { graph: g, builder: mb, output };
}
