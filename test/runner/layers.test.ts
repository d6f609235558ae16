// The runner's layers (docs/architecture.md, "The runner's layers"): every import of a non-test file under gpu-runner/
// goes to the same layer or a lower one, and no files import each other in a circle. Read from the source text, so a
// new import that climbs fails here with the file and the line that adds it.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNNER = join(ROOT, 'gpu-runner');

/** gpu-runner's folders from the ground up (docs/architecture.md); folders on one line may import each other. */
const LAYERS: readonly (readonly string[])[] = [
  ['io', 'random'],
  ['onnx'],
  ['models'],
  ['diffusion'],
  ['parity'],
  ['personalize'],
  ['pack'],
  ['world', 'server'],
  ['commands', 'main.ts', 'browser'],
];

/** Inside the engine (gpu-runner/onnx/README.md): graphs and ops, then optimizers, then sessions, then the trainer. */
const ENGINE_LAYERS: readonly (readonly string[])[] = [
  ['index.ts', 'ir', 'ops', 'nn', 'autodiff', 'serialize'],
  ['optim'],
  ['runtime'],
  ['training'],
  ['testing'],
];

const isSource = (file: string) => /\.(ts|mjs)$/.test(file) && !/\.test\.ts$/.test(file);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.isFile() && isSource(entry.name) ? [path] : [];
  });
}

/** Relative module specifiers: static imports and re-exports, `import('…')`, and worker modules (`new URL('….ts', import.meta.url)`). */
function importsOf(file: string): { target: string; line: number }[] {
  const text = readFileSync(file, 'utf8');
  const found: { target: string; line: number }[] = [];
  const patterns = [/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g, /new URL\(\s*['"](\.{1,2}\/[^'"]+\.(?:ts|mjs))['"]\s*,\s*import\.meta\.url/g];
  for (const pattern of patterns) {
    for (const match of text.matchAll(pattern)) {
      const line = text.slice(0, match.index).split('\n').length;
      found.push({ target: normalize(join(dirname(file), match[1]!)), line });
    }
  }
  return found;
}

function rank(layers: readonly (readonly string[])[], name: string): number | undefined {
  const index = layers.findIndex((names) => names.includes(name));
  return index < 0 ? undefined : index;
}

/** A file's place: its layer under gpu-runner/ and, inside the engine, its engine layer. */
function placeOf(file: string): { layer: number | undefined; engine: number | undefined } {
  const parts = relative(RUNNER, file).split(sep);
  const layer = rank(LAYERS, parts[0]!);
  const engine = parts[0] === 'onnx' && parts.length > 1 ? rank(ENGINE_LAYERS, parts[1]!) : undefined;
  return { layer, engine };
}

const files = sourceFiles(RUNNER);
const show = (path: string) => relative(ROOT, path).split(sep).join('/');

describe("the runner's layers", () => {
  it('places every folder of gpu-runner/ on a layer', () => {
    const unplaced = files.filter((file) => {
      const place = placeOf(file);
      return place.layer === undefined || (relative(RUNNER, file).startsWith(`onnx${sep}`) && place.engine === undefined);
    });
    expect(unplaced.map(show), 'a new folder: put it on its layer here and in docs/architecture.md').toEqual([]);
  });

  it('has no import that climbs to a higher layer', () => {
    const climbing: string[] = [];
    for (const file of files) {
      const from = placeOf(file);
      for (const { target, line } of importsOf(file)) {
        if (!target.startsWith(RUNNER + sep)) continue;
        const to = placeOf(target);
        const climbsLayer = from.layer !== undefined && to.layer !== undefined && to.layer > from.layer;
        const climbsEngine = from.engine !== undefined && to.engine !== undefined && to.engine > from.engine;
        if (climbsLayer || climbsEngine) climbing.push(`${show(file)}:${line} imports ${show(target)}`);
      }
    }
    expect(climbing).toEqual([]);
  });

  it('has no files that import each other in a circle', () => {
    const edges = new Map(files.map((file) => [file, importsOf(file).map((i) => i.target).filter((t) => t !== file && isSource(t))]));
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      state.set(file, 'open');
      for (const next of edges.get(file) ?? []) {
        if (state.get(next) === 'open') circles.push([...path.slice(path.indexOf(next)), next].map(show).join(' -> '));
        else if (!state.has(next) && edges.has(next)) visit(next, [...path, next]);
      }
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file, [file]);
    expect(circles).toEqual([]);
  });

  it('reads command lines only in commands: no library module looks at process.argv', () => {
    const readers = files.filter((file) => placeOf(file).layer !== rank(LAYERS, 'commands') && readFileSync(file, 'utf8').includes('process.argv'));
    expect(readers.map(show)).toEqual([]);
  });

  it('would see a climbing import (the check is not vacuous)', () => {
    const server = files.find((file) => show(file).startsWith('gpu-runner/server/'))!;
    const onnx = files.find((file) => show(file).startsWith('gpu-runner/onnx/runtime/'))!;
    expect(placeOf(server).layer).toBeGreaterThan(placeOf(onnx).layer!);
    expect(files.flatMap(importsOf).length).toBeGreaterThan(500);
  });
});
