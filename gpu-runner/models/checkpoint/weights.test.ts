import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float32ToFloat16Bits, loadSafetensors, type Tensor, writeSafetensors } from '../../io/safetensors.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { unetInventory } from '../unet/inventory.ts';
import { openDiffusersFolder, openTextEncoderFolder, openUnetFolder, openVaeFolder } from './diffusers-folder.ts';
import { writeRandomCheckpoint } from './random-weights.ts';
import { ModelWeights } from './weights.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hdb-checkpoint-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const tiny = (component: string) => referencePath('sd15-tiny', component);

/** A copy of a tiny model folder whose weights went through `edit` (and are written under `fileName`). */
function editedFolder(component: string, weightFile: string, edit: (tensors: Map<string, Tensor>) => void, fileName = weightFile): string {
  const dir = mkdtempSync(join(scratch, `${component}-`));
  copyFileSync(join(tiny(component), 'config.json'), join(dir, 'config.json'));
  const { tensors } = loadSafetensors(join(tiny(component), weightFile));
  edit(tensors);
  writeSafetensors(join(dir, fileName), tensors);
  return dir;
}

describe('opening model folders', () => {
  it('opens the tiny fixtures and locates every tensor inside its file', () => {
    const unet = openUnetFolder(tiny('unet'));
    expect(unet.weights.names.length).toBe(442);
    expect(unet.weights.dtype).toBe('float32');
    const stored = unet.weights.tensor('conv_in.weight');
    expect(stored.shape).toEqual([8, 4, 3, 3]);
    expect(stored.byteLength).toBe(8 * 4 * 9 * 4);
    expect(unet.weights.externalLocation('conv_in.weight', tiny('unet'))).toEqual({
      location: 'diffusion_pytorch_model.safetensors',
      offset: stored.byteOffset,
      length: stored.byteLength,
    });
    expect(() => unet.weights.externalLocation('conv_in.weight', tiny('vae'))).toThrow(/not inside the model folder/);
    expect(openTextEncoderFolder(tiny('text_encoder')).weights.names.length).toBe(36);
    expect(openVaeFolder(tiny('vae')).weights.names.length).toBe(248);
  });

  it('names a missing tensor', () => {
    const dir = editedFolder('unet', 'diffusion_pytorch_model.safetensors', (t) => t.delete('mid_block.resnets.1.conv2.weight'));
    expect(() => openUnetFolder(dir)).toThrow(/unet: .*missing tensor\(s\): mid_block\.resnets\.1\.conv2\.weight/);
  });

  it('names a mis-shaped tensor with both shapes', () => {
    const dir = editedFolder('vae', 'diffusion_pytorch_model.safetensors', (t) => {
      t.set('decoder.conv_out.weight', { dtype: 'F32', shape: [3, 8, 1, 1], data: new Float32Array(24) });
    });
    expect(() => openVaeFolder(dir)).toThrow(/decoder\.conv_out\.weight is \[3, 8, 1, 1\], expected \[3, 8, 3, 3\]/);
  });

  it('names an unexpected tensor', () => {
    const dir = editedFolder('text_encoder', 'model.safetensors', (t) => {
      t.set('text_model.encoder.layers.2.mlp.fc1.bias', { dtype: 'F32', shape: [128], data: new Float32Array(128) });
    });
    expect(() => openTextEncoderFolder(dir)).toThrow(/unexpected tensor\(s\): text_model\.encoder\.layers\.2\.mlp\.fc1\.bias/);
  });

  it('accepts the legacy CLIP position_ids buffer and legacy VAE attention names', () => {
    const text = editedFolder('text_encoder', 'model.safetensors', (t) => {
      t.set('text_model.embeddings.position_ids', { dtype: 'I64', shape: [1, 77], data: BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i)) });
    });
    expect(openTextEncoderFolder(text).weights.names.length).toBe(36);

    const legacy: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
    const vae = editedFolder('vae', 'diffusion_pytorch_model.safetensors', (t) => {
      for (const [name, tensor] of [...t.entries()]) {
        const match = /^(.*mid_block\.attentions\.0)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(name);
        if (!match) continue;
        t.delete(name);
        t.set(`${match[1]}.${legacy[match[2]!]}.${match[3]}`, tensor);
      }
    });
    const weights = openVaeFolder(vae).weights;
    expect(weights.tensor('decoder.mid_block.attentions.0.to_out.0.weight').key).toBe('decoder.mid_block.attentions.0.proj_attn.weight');
  });

  it('loads an fp16 variant, widening values exactly', () => {
    const dir = editedFolder(
      'unet',
      'diffusion_pytorch_model.safetensors',
      (t) => {
        for (const [name, tensor] of t) t.set(name, { dtype: 'F16', shape: tensor.shape, data: float32ToFloat16Bits(tensor.data as Float32Array) });
      },
      'diffusion_pytorch_model.fp16.safetensors',
    );
    const unet = openUnetFolder(dir, { variant: 'fp16' });
    expect(unet.weights.dtype).toBe('float16');
    const reference = openUnetFolder(tiny('unet')).weights.readFloat32('conv_in.weight');
    const widened = unet.weights.readFloat32('conv_in.weight');
    const maxDiff = Math.max(...widened.map((v, i) => Math.abs(v - reference[i]!)));
    expect(maxDiff).toBeGreaterThan(0);
    expect(maxDiff).toBeLessThan(1e-3);
    expect(() => openUnetFolder(dir, { variant: 'ema' })).toThrow(/holds variant\(s\) "fp16" of diffusion_pytorch_model\.safetensors, not "ema"/);
  });

  it('uses the only variant a folder holds, and asks for a choice between several', () => {
    const toFp16 = (t: Map<string, Tensor>) => {
      for (const [name, tensor] of t) t.set(name, { dtype: 'F16', shape: tensor.shape, data: float32ToFloat16Bits(tensor.data as Float32Array) });
    };
    const dir = editedFolder('unet', 'diffusion_pytorch_model.safetensors', toFp16, 'diffusion_pytorch_model.fp16.safetensors');
    expect(openUnetFolder(dir).weights.dtype).toBe('float16');
    expect(openUnetFolder(dir).weights.tensor('conv_in.weight').file).toBe(join(dir, 'diffusion_pytorch_model.fp16.safetensors'));

    copyFileSync(join(dir, 'diffusion_pytorch_model.fp16.safetensors'), join(dir, 'diffusion_pytorch_model.ema.safetensors'));
    expect(() => openUnetFolder(dir)).toThrow(/holds variant\(s\) "ema", "fp16" of .* and no plain file; choose one \(RUNNER_MODEL_VARIANT\)/);
    expect(openUnetFolder(dir, { variant: 'ema' }).weights.tensor('conv_in.weight').file).toMatch(/\.ema\.safetensors$/);
  });

  it('loads sharded weights through their index, plain or variant', () => {
    for (const variant of [undefined, 'fp16']) {
      const base = variant ? `diffusion_pytorch_model.${variant}` : 'diffusion_pytorch_model';
      const dir = mkdtempSync(join(scratch, 'sharded-'));
      copyFileSync(join(tiny('vae'), 'config.json'), join(dir, 'config.json'));
      const { tensors } = loadSafetensors(join(tiny('vae'), 'diffusion_pytorch_model.safetensors'));
      const names = [...tensors.keys()];
      const shards = [names.slice(0, 100), names.slice(100)].map((part, i) => {
        const shard = `${base}-0000${i + 1}-of-00002.safetensors`;
        writeSafetensors(join(dir, shard), new Map(part.map((name) => [name, tensors.get(name)!])));
        return [shard, part] as const;
      });
      const weightMap = Object.fromEntries(shards.flatMap(([shard, part]) => part.map((name) => [name, shard])));
      writeFileSync(join(dir, `${base}.safetensors.index.json`), JSON.stringify({ metadata: {}, weight_map: weightMap }));

      const weights = openVaeFolder(dir, variant ? { variant } : {}).weights;
      expect(weights.names.length).toBe(248);
      expect(weights.tensor(names[0]!).file).toBe(join(dir, shards[0]![0]));
      expect(weights.tensor(names[200]!).file).toBe(join(dir, shards[1]![0]));
      expect(weights.readFloat32(names[200]!)).toEqual(tensors.get(names[200]!)!.data);
      if (variant) expect(openVaeFolder(dir).weights.names.length).toBe(248);

      rmSync(join(dir, shards[1]![0]));
      expect(() => openVaeFolder(dir, variant ? { variant } : {})).toThrow(/lists shard\(s\) that are missing: .*-00002-of-00002\.safetensors/);
    }
  });

  it('explains that pickle checkpoints are not loaded', () => {
    const dir = mkdtempSync(join(scratch, 'pickle-'));
    copyFileSync(join(tiny('unet'), 'config.json'), join(dir, 'config.json'));
    writeFileSync(join(dir, 'diffusion_pytorch_model.bin'), 'not read');
    expect(() => openUnetFolder(dir)).toThrow(/pickle checkpoints are not loaded/);
  });
});

describe('opening a diffusers Stable Diffusion folder', () => {
  function sdFolder(modelIndex: unknown): string {
    const root = mkdtempSync(join(scratch, 'sd-'));
    for (const [component, file] of [
      ['unet', 'diffusion_pytorch_model.safetensors'],
      ['text_encoder', 'model.safetensors'],
      ['vae', 'diffusion_pytorch_model.safetensors'],
    ] as const) {
      mkdirSync(join(root, component));
      copyFileSync(join(tiny(component), 'config.json'), join(root, component, 'config.json'));
      copyFileSync(join(tiny(component), file), join(root, component, file));
    }
    writeFileSync(join(root, 'model_index.json'), JSON.stringify(modelIndex));
    return root;
  }
  const index = {
    _class_name: 'StableDiffusionPipeline',
    unet: ['diffusers', 'UNet2DConditionModel'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    vae: ['diffusers', 'AutoencoderKL'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    scheduler: ['diffusers', 'PNDMScheduler'],
  };

  it('opens every model of the pipeline', () => {
    const folder = openDiffusersFolder(sdFolder(index));
    expect(folder.unet.plan.config.blockOutChannels).toEqual([8, 16, 32, 32]);
    expect(folder.textEncoder.config.hiddenSize).toBe(32);
    expect(folder.vae.plan.config.scalingFactor).toBeCloseTo(0.18215, 10);
  });

  it('refuses a pipeline whose component classes differ', () => {
    expect(() => openDiffusersFolder(sdFolder({ ...index, unet: ['diffusers', 'UNet2DModel'] }))).toThrow(
      /unet is UNet2DModel, expected UNet2DConditionModel/,
    );
  });
});

describe('random checkpoints for benchmarks', () => {
  it('hold the whole inventory with torch-like magnitudes, deterministically per seed', () => {
    const plan = openUnetFolder(tiny('unet')).plan;
    const inventory = unetInventory(plan);
    const paths = [0, 0, 1].map((seed, i) => {
      const path = join(scratch, `random-${i}.safetensors`);
      writeRandomCheckpoint(path, inventory, seed);
      return path;
    });
    const [a, b, c] = paths.map((path) => ModelWeights.open([path], inventory).readAllFloat32());
    const conv = a!.get('down_blocks.1.resnets.0.conv1.weight')!;
    const bound = 1 / Math.sqrt(8 * 3 * 3);
    expect(Math.max(...conv.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...conv.map(Math.abs))).toBeGreaterThan(bound / 2);
    expect([...a!.get('conv_norm_out.weight')!]).toEqual(new Array(8).fill(1));
    expect(b!.get('conv_in.weight')).toEqual(a!.get('conv_in.weight'));
    expect(c!.get('conv_in.weight')).not.toEqual(a!.get('conv_in.weight'));
  });
});
