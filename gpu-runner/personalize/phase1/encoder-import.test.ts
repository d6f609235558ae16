import { describe, expect, it } from 'vitest';
import { serializeSafetensors, type Tensor } from '../../io/safetensors.ts';
import { parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from '../hypernetwork/config.ts';
import { hypernetworkInventory, initHypernetworkParams } from '../hypernetwork/inventory.ts';
import { tinyPersonalizationModel } from '../testing/tiny-model.ts';
import { withImportedEncoder } from './encoder-import.ts';

const model = tinyPersonalizationModel({ hypernetworkSeed: 1 });
const hyper = model.hypernetwork!;

/** A timm-named file of the encoder of `config` (weights from another seed, so the import is visible). */
function timmFile(config = hyper.config): Uint8Array {
  const params = initHypernetworkParams(config, hypernetworkInventory(config, hyper.heads), 99);
  const tensors: Record<string, Tensor> = {};
  for (const { name, shape } of hypernetworkInventory(config, hyper.heads)) {
    if (name.startsWith('encoder.')) tensors[name.replace(/^encoder\./, '')] = { dtype: 'F32', shape: [...shape], data: params.get(name)! };
  }
  return serializeSafetensors(tensors);
}

describe('a pretrained encoder imported before phase 1', () => {
  it('replaces the encoder only', () => {
    const source = initHypernetworkParams(hyper.config, hypernetworkInventory(hyper.config, hyper.heads), 99);
    const imported = withImportedEncoder(model, timmFile(), 'timm').hypernetwork!;
    for (const [name, value] of hyper.params) {
      if (name.startsWith('encoder.')) expect(imported.params.get(name)).toEqual(source.get(name));
      else expect(imported.params.get(name)).toBe(value);
    }
    expect(imported.params.get('encoder.blocks.0.attn.qkv.weight')).not.toEqual(hyper.params.get('encoder.blocks.0.attn.qkv.weight'));
  });

  it('names the first tensor whose shape does not fit the config', () => {
    const wider = parseHypernetworkConfig({ ...TINY_HYPERNETWORK_CONFIG, encoder: { ...TINY_HYPERNETWORK_CONFIG.encoder, width: 48, heads: 4 } });
    expect(() => withImportedEncoder(model, timmFile(wider), 'timm')).toThrow(/timm ViT: ".+" is \[.+\], "encoder\..+" needs \[.+\]/);
  });
});
