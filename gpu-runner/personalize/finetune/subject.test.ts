import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from '../../diffusion/tokenizer/clip-tokenizer.ts';
import { openTextEncoderFolder, openUnetFolder, openVaeFolder } from '../../models/checkpoint/diffusers-folder.ts';
import { externalParams } from '../../models/params.ts';
import { referencePath } from '../../../test/fixtures/reference-dir.ts';
import { createPersonalizationModel } from '../model.ts';
import { encodeSubject } from './subject.ts';

const root = mkdtempSync(join(tmpdir(), 'hdb-subject-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('encodeSubject', () => {
  it('gives the same latent distribution with the VAE weights inline or referenced in place (external data)', async () => {
    const vaeDir = join(root, 'vae');
    cpSync(referencePath('sd15-tiny', 'vae'), vaeDir, { recursive: true });
    const components = {
      id: 'sd15-tiny',
      sha256: '0'.repeat(64),
      unet: openUnetFolder(referencePath('sd15-tiny', 'unet')),
      textEncoder: openTextEncoderFolder(referencePath('sd15-tiny', 'text_encoder')),
      vae: openVaeFolder(vaeDir),
      tokenizer: ClipTokenizer.load(BUNDLED_CLIP_VOCAB),
    };
    const inline = createPersonalizationModel(components);
    const external = createPersonalizationModel({ ...components, paramSources: { vae: externalParams(components.vae.weights, vaeDir) } });
    const image = { width: 80, height: 64, data: Uint8Array.from({ length: 80 * 64 * 3 }, (_, i) => (i * 37) % 251) };
    const a = await encodeSubject(inline, image);
    const b = await encodeSubject(external, image);
    expect(a.shape).toEqual([1, 4, 8, 8]);
    expect(b.mean).toEqual(a.mean);
    expect(b.std).toEqual(a.std);
    expect(readdirSync(vaeDir).some((name) => name.endsWith('.onnx'))).toBe(true);
  });
});
