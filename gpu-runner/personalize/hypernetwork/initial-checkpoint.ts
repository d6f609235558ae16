// An untrained hypernetwork checkpoint for a model pack (the tiny pack ships one so every path runs end to end): seeded
// initialization, heads N(0, 1e−3), so its predictions give ΔW ≈ 0 until phase 1 trains it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ClipTextConfig } from '../../models/clip-text/config.ts';
import type { UnetPlan } from '../../models/unet/plan.ts';
import { adaptedLayers, type AdaptedLayerSelection, adaptedLayerSelectionSchema } from '../lidb/adapted-layers.ts';
import { type LidbSettings, lidbSettings } from '../lidb/settings.ts';
import { encodeHypernetworkCheckpoint } from './checkpoint.ts';
import { type HypernetworkConfig, parseHypernetworkConfig, TINY_HYPERNETWORK_CONFIG } from './config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from './inventory.ts';

export interface InitialHypernetworkOptions {
  readonly config?: HypernetworkConfig;
  readonly lidb?: LidbSettings;
  readonly selection?: AdaptedLayerSelection;
  readonly seed?: number;
}

/** Encodes an initialized checkpoint for the pack's models; deterministic for a seed. */
export function initialHypernetworkCheckpoint(models: { unet: UnetPlan; textEncoder: ClipTextConfig }, options: InitialHypernetworkOptions = {}): Uint8Array {
  const config = options.config ?? parseHypernetworkConfig(TINY_HYPERNETWORK_CONFIG);
  const lidb = options.lidb ?? lidbSettings();
  const selection = options.selection ?? adaptedLayerSelectionSchema.parse({});
  const layers = adaptedLayers(models, selection);
  const inventory = hypernetworkInventory(config, headLayouts(layers, lidb));
  const params = initHypernetworkParams(config, inventory, options.seed ?? 0);
  return encodeHypernetworkCheckpoint(
    { config, lidb, selection, layerNames: layers.map((l) => l.name), params, info: { trained: 'false', seed: String(options.seed ?? 0) } },
    inventory,
  );
}

export function writeInitialHypernetworkCheckpoint(path: string, models: { unet: UnetPlan; textEncoder: ClipTextConfig }, options: InitialHypernetworkOptions = {}): number {
  const bytes = initialHypernetworkCheckpoint(models, options);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return bytes.byteLength;
}
