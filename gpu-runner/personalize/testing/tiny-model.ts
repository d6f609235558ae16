// The tiny personalization model that tests and benchmarks share: the sd15-tiny reference checkpoints (SD 1.5's
// topology at tiny widths) with the bundled CLIP tokenizer, optionally with a freshly initialized tiny hypernetwork.
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import { openTextEncoderFolder, openUnetFolder, openVaeFolder } from '../../models/checkpoint/diffusers-folder.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from '../hypernetwork/config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from '../hypernetwork/inventory.ts';
import { createPersonalizationModel, type PersonalizationModel, type PersonalizationModelInput } from '../model.ts';

/** The fixtures are not a published pack, so they have no real digest; weight files carry this placeholder. */
const FIXTURE_SHA256 = '0'.repeat(64);

/** The sd15-tiny networks and tokenizer, each opened once. */
export function tinyModelComponents(): PersonalizationModelInput {
  return {
    id: 'sd15-tiny',
    sha256: FIXTURE_SHA256,
    unet: openUnetFolder(referencePath('sd15-tiny', 'unet')),
    textEncoder: openTextEncoderFolder(referencePath('sd15-tiny', 'text_encoder')),
    vae: openVaeFolder(referencePath('sd15-tiny', 'vae')),
    tokenizer: ClipTokenizer.load(BUNDLED_CLIP_VOCAB),
  };
}

/**
 * The tiny model; with `hypernetworkSeed`, it carries the tiny hypernetwork initialized from that seed (untrained:
 * its predicted ΔW starts near zero).
 */
export function tinyPersonalizationModel(options: { hypernetworkSeed?: number } = {}): PersonalizationModel {
  const components = tinyModelComponents();
  const base = createPersonalizationModel(components);
  if (options.hypernetworkSeed === undefined) return base;
  const config = parseHypernetworkConfig(TINY_HYPERNETWORK_CONFIG);
  const params = initHypernetworkParams(config, hypernetworkInventory(config, headLayouts(base.layers, base.lidb)), options.hypernetworkSeed);
  return createPersonalizationModel({ ...components, hypernetwork: { config, params } });
}
