// gpu-runner/Dockerfile cannot be built here (no Docker engine): it is linted with dockerfile-utils (the parser and
// validator behind the VS Code Docker extension), and the container properties the runner needs (docs/architecture.md)
// are checked on its instructions.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCKERFILE = `${ROOT}gpu-runner/Dockerfile`;
const LINTER = `${ROOT}node_modules/.bin/dockerfile-utils`;

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Array<{ keyword: string; args: string }> {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
}

describe('gpu-runner/Dockerfile', () => {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const all = instructions(text);
  const args = (keyword: string) => all.filter((i) => i.keyword === keyword).map((i) => i.args);

  it('passes dockerfile-utils lint without a problem', () => {
    const result = spawnSync(LINTER, ['lint', '--json', DOCKERFILE], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
  });

  it('the linter does catch a broken file (so the check above can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hdb-dockerfile-'));
    try {
      writeFileSync(join(dir, 'Dockerfile'), 'RUN true\nUSER\n');
      const result = spawnSync(LINTER, ['lint', '--json', join(dir, 'Dockerfile')], { encoding: 'utf8' });
      expect(JSON.parse(result.stdout).length).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs on a CUDA 12 + cuDNN 9 runtime base with Node 20', () => {
    expect(text).toMatch(/ARG CUDA_IMAGE=nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/);
    expect(text).toMatch(/ARG NODE_IMAGE=node:20\./);
  });

  it('installs dependencies with the onnxruntime CUDA provider, not skipping it', () => {
    expect(args('ENV')).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    expect(text).not.toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(args('RUN').some((run) => run.includes('npm ci') && run.includes('libonnxruntime_providers_cuda.so'))).toBe(true);
  });

  it('runs every session on CUDA, never falling back to CPU silently', () => {
    expect(args('ENV').join(' ')).toMatch(/RUNNER_EXECUTION_PROVIDER=cuda\b/);
    expect(text).not.toMatch(/RUNNER_EXECUTION_PROVIDER=auto/);
  });

  it('samples in fp16, the precision CUDA has fast kernels for', () => {
    expect(args('ENV').join(' ')).toMatch(/RUNNER_SAMPLING_PRECISION=fp16\b/);
  });

  it('carries the world pack, the default pack of an empty RUNNER_MODEL_DIR, and checks it is complete', () => {
    expect(args('COPY')).toContain('gpu-runner ./gpu-runner');
    expect(args('RUN').some((run) => run.includes('world-pack.ts') && run.includes('missingPackFiles'))).toBe(true);
    expect(text).not.toMatch(/pack:tiny/);
  });

  it('runs as a non-root user with the model folder as a volume, a health check and SIGTERM', () => {
    const users = args('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(args('VOLUME').join(' ')).toContain('/models');
    expect(args('HEALTHCHECK').join(' ')).toContain('/healthz');
    expect(args('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(args('CMD').at(-1)).toContain('gpu-runner/main.ts');
  });
});
