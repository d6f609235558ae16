// Key names of the LoRA formats other tools load. kohya (sd-scripts, A1111, ComfyUI): `lora_unet_<path with _>` and
// `lora_te_<path with _>` with `.lora_down.weight`, `.lora_up.weight`, `.alpha`. PEFT / diffusers:
// `<component>.<module path>.lora_A.weight` (down) and `.lora_B.weight` (up).
import { TEXT_ENCODER_COMPONENT, UNET_COMPONENT, type AdaptedLayer } from '../lidb/adapted-layers.ts';

const KOHYA_PREFIX = { [UNET_COMPONENT]: 'lora_unet', [TEXT_ENCODER_COMPONENT]: 'lora_te' } as const;

export function kohyaModuleKey(layer: Pick<AdaptedLayer, 'component' | 'modulePath'>): string {
  return `${KOHYA_PREFIX[layer.component]}_${layer.modulePath.replaceAll('.', '_')}`;
}

export const KOHYA_SUFFIX = { down: '.lora_down.weight', up: '.lora_up.weight', alpha: '.alpha' } as const;
export const PEFT_SUFFIX = { down: '.lora_A.weight', up: '.lora_B.weight' } as const;

export function peftModuleKey(layer: Pick<AdaptedLayer, 'component' | 'modulePath'>): string {
  return `${layer.component}.${layer.modulePath}`;
}
