// A pretrained image encoder (timm or open_clip names, safetensors) put into a hypernetwork before phase 1, where the
// paper puts its pretrained face ViT. Only `encoder.*` changes; the shapes must match the hypernetwork's config.
import { importVitWeights } from '../hypernetwork/checkpoint.ts';
import { hypernetworkInventory } from '../hypernetwork/inventory.ts';
import type { PersonalizationModel } from '../model.ts';

export const ENCODER_FORMATS = ['timm', 'open_clip'] as const;
export type EncoderFormat = (typeof ENCODER_FORMATS)[number];

export function withImportedEncoder(model: PersonalizationModel, bytes: Uint8Array, format: EncoderFormat): PersonalizationModel {
  const hyper = model.hypernetwork;
  if (!hyper) throw new Error('importing an encoder needs a hypernetwork in the model');
  const imported = importVitWeights(bytes, format, hypernetworkInventory(hyper.config, hyper.heads), hyper.config.encoder);
  const params = new Map(hyper.params);
  for (const [name, value] of imported) params.set(name, value);
  return { ...model, hypernetwork: { ...hyper, params } };
}
