// Loading a single-file Stable Diffusion 1.x checkpoint (one safetensors file with the original LDM key names, e.g.
// v1-5-pruned-emaonly.safetensors): each tensor is renamed to our parameter name and located in place, so graphs
// reference it as external data like a diffusers folder's weights (docs/engine.md). The file describes no
// architecture; it is read against SD 1.5's published configs (sd15-configs.ts).
import { dirname, resolve } from 'node:path';
import { SafetensorsFile, type TensorInfo } from '../../io/safetensors.ts';
import { parseClipTextConfig } from '../clip-text/config.ts';
import { clipTextInventory } from '../clip-text/inventory.ts';
import { parseUnetConfig } from '../unet/config.ts';
import { unetInventory } from '../unet/inventory.ts';
import { planUnet } from '../unet/plan.ts';
import { parseVaeConfig } from '../vae/config.ts';
import { vaeInventory } from '../vae/inventory.ts';
import { planVae } from '../vae/plan.ts';
import type { TensorShape } from '../inventory.ts';
import type { TextEncoderComponent, UnetComponent, VaeComponent } from './diffusers-folder.ts';
import { type LdmComponent, LDM_PREFIXES, ldmKeyMapper } from './ldm-names.ts';
import { SD15_CONFIGS, type SingleFileConfigs } from './sd15-configs.ts';
import { CheckpointError, ModelWeights, type StoredTensor, storedTensor } from './weights.ts';

export interface SingleFileCheckpoint {
  file: string;
  unet: UnetComponent;
  textEncoder: TextEncoderComponent;
  vae: VaeComponent;
  /** Tensors of the file that inference does not use, with why (EMA copy, schedule buffers, …). */
  ignored: { key: string; reason: string }[];
}

const LISTED = 5;

function listed(keys: readonly string[]): string {
  return keys.slice(0, LISTED).join(', ') + (keys.length > LISTED ? `, … (${keys.length} in all)` : '');
}

/** Key prefixes that mark the checkpoint families people most often mistake for SD 1.x (their text encoders differ). */
const OTHER_FAMILIES: readonly (readonly [string, string])[] = [
  ['conditioner.embedders.', 'SDXL'],
  ['cond_stage_model.model.', 'SD 2.x (OpenCLIP text encoder)'],
];

function otherFamily(unknown: readonly string[]): string {
  const family = OTHER_FAMILIES.find(([prefix]) => unknown.some((key) => key.startsWith(prefix)))?.[1];
  return family ? ` (this looks like ${family}, which the runner does not load)` : '';
}

/** A 1×1 convolution's weight [C, C, 1, 1] (or a Conv1d's [C, C, 1]) viewed as a linear weight [C, C]: same bytes. */
function squeezed(info: TensorInfo): TensorShape {
  const [rows, cols, ...rest] = info.shape;
  if (rows === undefined || cols === undefined || rest.length === 0 || rest.some((d) => d !== 1)) return info.shape;
  return [rows, cols];
}

/**
 * Opens `file` as an SD 1.x single-file checkpoint: every tensor maps to a parameter of the UNet, VAE or text
 * encoder, or is a known extra (listed in `ignored`); an unknown tensor, or a missing, mis-shaped or unexpected
 * parameter, fails with its name.
 */
export function openSingleFileCheckpoint(file: string, configs: SingleFileConfigs = SD15_CONFIGS): SingleFileCheckpoint {
  const path = resolve(file);
  const unetPlan = planUnet(parseUnetConfig(configs.unet));
  const vaePlan = planVae(parseVaeConfig(configs.vae));
  const textConfig = parseClipTextConfig(configs.textEncoder);
  const mapKey = ldmKeyMapper({ unetLayersPerBlock: unetPlan.config.layersPerBlock, vaeBlocks: vaePlan.config.blockOutChannels.length });

  const opened = SafetensorsFile.open(path);
  const { tensors } = opened.header;
  opened.close();
  if (!tensors.some((info) => info.name.startsWith(LDM_PREFIXES.unet))) {
    throw new CheckpointError(
      `${path}: no ${LDM_PREFIXES.unet}* tensors, so not a single-file SD 1.x checkpoint with the original key names` +
        ` (a diffusers folder needs its model_index.json)`,
    );
  }

  const stored: Record<LdmComponent, StoredTensor[]> = { unet: [], vae: [], text_encoder: [] };
  const ignored: SingleFileCheckpoint['ignored'] = [];
  const unknown: string[] = [];
  for (const info of tensors) {
    const mapping = mapKey(info.name);
    if (mapping.kind === 'ignored') ignored.push({ key: info.name, reason: mapping.reason });
    else if (mapping.kind === 'unknown') unknown.push(info.name);
    else stored[mapping.component].push(storedTensor(mapping.component, mapping.name, info, path, mapping.squeeze ? squeezed(info) : info.shape));
  }
  if (unknown.length > 0) {
    throw new CheckpointError(`${path}: unknown tensor(s) for an SD 1.x checkpoint${otherFamily(unknown)}: ${listed(unknown)}`);
  }

  // A parameter the model does not have is named by its key in the file, which is what a user can look up.
  const describe = (tensor: StoredTensor) => `${tensor.key} (as ${tensor.name})`;
  const dir = dirname(path);
  return {
    file: path,
    unet: { dir, plan: unetPlan, weights: ModelWeights.fromStored('unet', stored.unet, unetInventory(unetPlan), describe) },
    textEncoder: {
      dir,
      config: textConfig,
      weights: ModelWeights.fromStored('text_encoder', stored.text_encoder, clipTextInventory(textConfig), describe),
    },
    vae: { dir, plan: vaePlan, weights: ModelWeights.fromStored('vae', stored.vae, vaeInventory(vaePlan), describe) },
    ignored,
  };
}
