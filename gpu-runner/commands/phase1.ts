// `npm run phase1 -- <pre-optimize | train> [options]` (also `npm run train:preoptimize` / `train:hypernetwork`): phase 1
// on the synthetic world's identities with a model pack (--pack; by default the world pack once complete, else the tiny
// pack), identifier "sks" (the world's) unless --identifier says otherwise. Progress is one line redrawn on a
// terminal, JSON lines otherwise (`--progress tty|json`); results are files, so runs resume where they stopped.
//   pre-optimize --out DIR [--identities N] [--split train|validation] [--steps N] [--lr X] [--identifier T]
//                [--eval-samples N] [--shard I/N | --workers N]            one LiDB file + record per identity, manifest.json
//   pretrain-encoder --out FILE [--identities N] [--extra-identities N] [--validation N] [--photos N] [--steps N] [--batch N] [--lr X]
//                [--config FILE]                                         the face encoder trained on attribute labels,
//                                                                          written as a hypernetwork checkpoint (train --init)
//   train --lidb DIR [--identities N] [--validation N] [--steps N] [--batch N] [--alpha X] [--beta X] [--lr X]
//         [--identifier T] [--validation-every N] [--checkpoint FILE] [--checkpoint-every N] [--resume] [--out FILE]
//         [--encoder FILE [--encoder-format timm|open_clip]]              a pretrained ViT for the encoder (also for
//                                                                          pretrain-encoder); its shapes must fit --config
//         [--faces DIR [--report FILE]]                                   a folder of photos instead of the world: one
//                                                                          subfolder per person (or one photo each),
//                                                                          `<photo>.txt` captions; the last --validation
//                                                                          people held out; skipped files in the report
//         [--face-detector FILE [--face-detector-size WxH] [--min-face-score X]]   with --faces: an UltraFace-convention
//                                                                          ONNX detector (e.g. version-RFB-320); photos
//                                                                          without a face (score < X, 0.7) are skipped,
//                                                                          inputs are cropped around the face found
//         [--config FILE | --init FILE] [--views N --inputs N [--extra-identities N]] [--attribute-weight X]   hypernetwork checkpoint (default: the pack's);
//                                                                          --config: a fresh hypernetwork of that JSON config;
//                                                                          --views: fit N other captioned renders per
//                                                                          identity (N input photos each), not the input;
//                                                                          --attribute-weight: γ of the attribute probe
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HYPERNETWORK_CHECKPOINT, loadModelPack } from '../pack/model-pack.ts';
import { shutdownSharedSessionHost } from '../onnx/runtime/index.ts';
import { decodeHypernetworkCheckpoint, encodeHypernetworkCheckpoint } from '../personalize/hypernetwork/checkpoint.ts';
import { pretrainFaceEncoder } from '../personalize/phase1/pretrain-encoder.ts';
import { parseHypernetworkConfig } from '../personalize/hypernetwork/config.ts';
import { headLayouts, hypernetworkInventory, initHypernetworkParams } from '../personalize/hypernetwork/inventory.ts';
import { claimRunFile, claimRunFolder, preOptimizeRun, RUN_FILE, writeManifest } from '../personalize/phase1/manifest.ts';
import { runShardPool } from '../personalize/phase1/pool.ts';
import { DEFAULT_PRE_OPTIMIZE_LEARNING_RATE, DEFAULT_PRE_OPTIMIZE_STEPS, preOptimizedPath, preOptimizeIdentities, readPreOptimized, shardOf } from '../personalize/phase1/pre-optimize.ts';
import { createProgress, type ProgressMode } from '../personalize/phase1/progress.ts';
import { appendTrainingStage, TRAINING_STAGES_KEY, trainingStages } from '../personalize/phase1/training-stages.ts';
import { readSafetensorsHeader } from '../io/safetensors.ts';
import { encoderPixels, type Phase1Subject, preparePhase1Subject, preparePhase1View, trainHypernetwork } from '../personalize/phase1/train-hypernetwork.ts';
import { folderPhase1Subjects, readFaceFolder, type FaceFolder } from '../personalize/phase1/face-folder.ts';
import { FaceDetector } from '../personalize/face/detector.ts';
import { ENCODER_FORMATS, type EncoderFormat, withImportedEncoder } from '../personalize/phase1/encoder-import.ts';
import { assertHeldOut, WORLD_ATTRIBUTE_GROUPS, worldAttributeLabels, worldIdentityImages, worldIdentityNumber, worldPhase1Identities } from '../world/phase1-identities.ts';
import { DEFAULT_WORLD } from '../world/dataset.ts';
import { sampleIdentity } from '../world/sample.ts';

/** `--faces DIR` read with the optional face check: the detector opens for the folder and closes after it. */
async function readFolderWithFaceCheck(dir: string, identifier: string, detectorFile: string | undefined, size: string | undefined, minFaceScore: number | undefined): Promise<FaceFolder> {
  if (!detectorFile) {
    if (size !== undefined || minFaceScore !== undefined) throw new Error('--face-detector-size and --min-face-score need --face-detector FILE');
    return readFaceFolder(dir, { identifier });
  }
  const match = size === undefined ? null : /^(\d+)x(\d+)$/.exec(size);
  if (size !== undefined && !match) throw new Error(`--face-detector-size takes WIDTHxHEIGHT (e.g. 320x240), got "${size}"`);
  const detector = await FaceDetector.open(detectorFile, match ? { width: Number(match[1]), height: Number(match[2]) } : {});
  try {
    return await readFaceFolder(dir, { identifier, detector, ...(minFaceScore !== undefined ? { minFaceScore } : {}) });
  } finally {
    await detector.close();
  }
}

/** The identities are the world's, whose pretraining captions carry this identifier ("a photo of a sks face, …"). */
const DEFAULT_IDENTIFIER = DEFAULT_WORLD.identifier;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    pack: { type: 'string' },
    out: { type: 'string' },
    lidb: { type: 'string' },
    identities: { type: 'string', default: '16' },
    validation: { type: 'string', default: '4' },
    steps: { type: 'string' },
    shard: { type: 'string', default: '0/1' },
    workers: { type: 'string', default: '1' },
    split: { type: 'string', default: 'train' },
    identifier: { type: 'string' },
    'eval-samples': { type: 'string', default: '4' },
    progress: { type: 'string' },
    alpha: { type: 'string', default: '1' },
    'validation-every': { type: 'string', default: '10' },
    'checkpoint-every': { type: 'string', default: '10' },
    log: { type: 'string' },
    batch: { type: 'string', default: '2' },
    beta: { type: 'string', default: '0' },
    lr: { type: 'string' },
    checkpoint: { type: 'string' },
    resume: { type: 'boolean', default: false },
    seed: { type: 'string', default: '0' },
    config: { type: 'string' },
    views: { type: 'string', default: '0' },
    inputs: { type: 'string', default: '1' },
    'attribute-weight': { type: 'string', default: '0' },
    init: { type: 'string' },
    'teacher-weight': { type: 'string', default: '0' },
    schedule: { type: 'string', default: 'constant' },
    photos: { type: 'string', default: '16' },
    'extra-identities': { type: 'string', default: '0' },
    faces: { type: 'string' },
    encoder: { type: 'string' },
    'encoder-format': { type: 'string', default: 'timm' },
    report: { type: 'string' },
    'face-detector': { type: 'string' },
    'face-detector-size': { type: 'string' },
    'min-face-score': { type: 'string' },
  },
});

function int(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${value}`);
  return n;
}

function real(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${value}`);
  return n;
}

function lidbIdentifier(dir: string | undefined): string | undefined {
  const path = dir ? join(dir, RUN_FILE) : undefined;
  if (!path || !existsSync(path)) return undefined;
  const identifier = (JSON.parse(readFileSync(path, 'utf8')) as { settings?: { identifier?: unknown } }).settings?.identifier;
  return typeof identifier === 'string' ? identifier : undefined;
}

if (values.progress !== undefined && values.progress !== 'tty' && values.progress !== 'json') throw new Error(`--progress must be tty or json, got ${values.progress}`);
const progressMode = values.progress as ProgressMode | undefined;
/** JSON lines go to stdout (the process pool reads its children's); the terminal line to stderr. */
const progressFor = (label: string) => createProgress(label, { ...(progressMode ? { mode: progressMode } : {}), ...(progressMode === 'json' ? { out: process.stdout } : {}) });

const command = positionals[0];
const pack = await loadModelPack(values.pack, (message) => process.stderr.write(`${message}\n`));
const seed = int('seed', values.seed) ?? 0;
if (values.config && values.init) throw new Error('--config and --init both name the starting hypernetwork: pass one');
const startModel = values.config ? withFreshHypernetwork(pack.model, values.config, seed) : values.init ? withHypernetworkFrom(pack.model, values.init) : pack.model;
const encoderFormat = values['encoder-format'];
if (!(ENCODER_FORMATS as readonly string[]).includes(encoderFormat)) throw new Error(`--encoder-format must be ${ENCODER_FORMATS.join(' or ')}, got ${encoderFormat}`);
/** `--encoder FILE`: a pretrained ViT (timm or open_clip names) replaces the starting hypernetwork's encoder. */
const model = values.encoder ? withImportedEncoder(startModel, new Uint8Array(readFileSync(values.encoder)), encoderFormat as EncoderFormat) : startModel;
/** The phase-1 runs the starting hypernetwork already went through (none for a fresh one or an encoder alone). */
const startingFile = values.config ? undefined : (values.init ?? join(pack.dir, HYPERNETWORK_CHECKPOINT));
const startingStages = startingFile && existsSync(startingFile) ? trainingStages(readSafetensorsHeader(startingFile).metadata) : [];

/** The pack's model with the hypernetwork of a checkpoint file (e.g. one whose encoder `pretrain-encoder` trained). */
function withHypernetworkFrom(base: typeof pack.model, file: string): typeof pack.model {
  const checkpoint = decodeHypernetworkCheckpoint(new Uint8Array(readFileSync(file)), base.layers.map((layer) => layer.name), (config, lidb) => hypernetworkInventory(config, headLayouts(base.layers, lidb)));
  const heads = headLayouts(base.layers, checkpoint.lidb);
  return { ...base, hypernetwork: { config: checkpoint.config, heads, params: checkpoint.params } };
}

/** Writes `params` as the model's hypernetwork checkpoint. */
function writeHypernetwork(file: string, params: ReadonlyMap<string, Float32Array>, info: Record<string, string>): void {
  const hyper = model.hypernetwork!;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    encodeHypernetworkCheckpoint(
      { config: hyper.config, lidb: model.lidb, selection: model.selection, layerNames: model.layers.map((l) => l.name), params: new Map(params), info },
      hypernetworkInventory(hyper.config, hyper.heads),
    ),
  );
}

/** The pack's model with a newly initialized hypernetwork of another size (the pack's own is replaced on --out). */
function withFreshHypernetwork(base: typeof pack.model, file: string, initSeed: number): typeof pack.model {
  const config = parseHypernetworkConfig(JSON.parse(readFileSync(file, 'utf8')));
  const heads = base.hypernetwork?.heads ?? headLayouts(base.layers, base.lidb);
  return { ...base, hypernetwork: { config, heads, params: initHypernetworkParams(config, hypernetworkInventory(config, heads), initSeed, heads) } };
}
const count = int('identities', values.identities) ?? 16;
/** Identities in no split of the world (`extra`), added to the TRAIN ones by `train --views` and `pretrain-encoder`. */
const extraCount = int('extra-identities', values['extra-identities']) ?? 0;

if (command === 'pre-optimize') {
  if (!values.out) throw new Error('pre-optimize needs --out DIR');
  const shardMatch = /^(\d+)\/(\d+)$/.exec(values.shard);
  if (!shardMatch) throw new Error(`--shard must look like I/N (e.g. 0/4), got ${values.shard}`);
  const [index, shards] = [Number(shardMatch[1]), Number(shardMatch[2])];
  const split = values.split;
  if (split !== 'train' && split !== 'validation' && split !== 'test') throw new Error(`--split must be train, validation or test, got ${split}`);
  const identities = worldIdentityImages(split, count);
  const settings = {
    steps: int('steps', values.steps) ?? DEFAULT_PRE_OPTIMIZE_STEPS,
    learningRate: real('lr', values.lr) ?? DEFAULT_PRE_OPTIMIZE_LEARNING_RATE,
    seed,
    identifier: values.identifier ?? DEFAULT_IDENTIFIER,
    evaluationSamples: int('eval-samples', values['eval-samples']) ?? 0,
  };
  claimRunFolder(values.out, preOptimizeRun(model, settings));
  const progress = progressFor(`pre-optimize ${split}`);
  const workers = int('workers', values.workers) ?? 1;
  if (workers > 1) {
    // The pool's children get `--workers 1 --shard i/n --progress json` appended (later flags win).
    const shardSizes = Array.from({ length: workers }, (_, i) => shardOf(identities, { index: i, count: workers }).length);
    await runShardPool({ command: fileURLToPath(import.meta.url), workers, args: process.argv.slice(2), shardSizes, progress });
  } else {
    await preOptimizeIdentities(model, identities, {
      outDir: values.out,
      ...settings,
      shard: { index, count: shards },
      onProgress: (p) => {
        if (p.record) progress.event('identity', { ...p.record });
        const r = p.record;
        progress.update({
          done: p.done,
          total: p.total,
          fields: r ? { id: r.id, ...(r.lossBefore !== undefined ? { before: r.lossBefore } : {}), ...(r.lossAfter !== undefined ? { after: r.lossAfter } : {}), 'sec/id': r.seconds } : { skipped: p.skipped },
        });
      },
    });
  }
  progress.finish();
  const manifest = writeManifest(values.out);
  progress.event('manifest', { outDir: values.out, ...manifest.summary });
} else if (command === 'train') {
  const beta = real('beta', values.beta) ?? 0;
  const gamma = real('attribute-weight', values['attribute-weight']) ?? 0;
  const teacherWeight = real('teacher-weight', values['teacher-weight']) ?? 0;
  const lrSchedule = values.schedule;
  if (lrSchedule !== 'constant' && lrSchedule !== 'cosine') throw new Error(`--schedule must be constant or cosine, got ${lrSchedule}`);
  if (teacherWeight > 0 && !values.faces && !(Number(values.views) > 0)) throw new Error('--teacher-weight needs --views: the teacher reads each view\'s description');
  const viewCount = int('views', values.views) ?? 0;
  const inputCount = int('inputs', values.inputs) ?? 1;
  const identifier = values.identifier ?? lidbIdentifier(values.lidb) ?? DEFAULT_IDENTIFIER;
  if (viewCount > 0 && beta > 0) throw new Error('--views trains on captioned views without pre-optimized targets: use --beta 0');
  if (inputCount < 1) throw new Error('--inputs must be at least 1');
  if (extraCount > 0 && viewCount === 0) throw new Error('--extra-identities needs --views (the pre-optimized recipe reads TRAIN identities only)');
  if (!values.faces && (values['face-detector'] || values['min-face-score'] || values['face-detector-size'])) throw new Error('--face-detector, --face-detector-size and --min-face-score check the photos of --faces DIR: pass --faces');
  const faceFolder = values.faces ? await readFolderWithFaceCheck(values.faces, identifier, values['face-detector'], values['face-detector-size'], real('min-face-score', values['min-face-score'])) : undefined;
  const identities = faceFolder ? [] : worldIdentityImages('train', count);
  const heldOut = faceFolder ? [] : worldIdentityImages('validation', int('validation', values.validation) ?? 4);
  assertHeldOut(identities, heldOut);
  /** Per identity, one subject per input photo, all sharing the identity's captioned views and labels. */
  const viewSubjects = async (split: 'train' | 'validation' | 'extra', n: number, inputs: number) => {
    const people = worldPhase1Identities(split, n, { inputs, views: viewCount, identifier });
    const subjects = [];
    for (const person of people) {
      const views = await Promise.all(person.views.map((v) => preparePhase1View(model, v.image, v.caption, teacherWeight > 0 ? v.description : undefined)));
      for (const input of person.inputs) subjects.push(await preparePhase1Subject(model, input, { views, labels: person.labels }));
    }
    return subjects;
  };
  let train: Phase1Subject[];
  let validation: Phase1Subject[];
  if (faceFolder) {
    if (teacherWeight > 0 || gamma > 0 || beta > 0) throw new Error('--faces trains on the diffusion loss of the folder\'s captioned photos: --teacher-weight, --attribute-weight and --beta need labels or targets a folder does not have');
    const held = int('validation', values.validation) ?? 0;
    if (held >= faceFolder.people.length) throw new Error(`--faces ${values.faces}: ${faceFolder.people.length} people with readable photos, ${held} held out for validation leaves none to train on`);
    // The last people (by name) are held out: never trained on, their diffusion loss is the validation loss.
    const trainPeople = faceFolder.people.slice(0, faceFolder.people.length - held);
    const heldPeople = faceFolder.people.slice(faceFolder.people.length - held);
    const report = { folder: values.faces, identifier, faceCheck: faceFolder.faceCheck, train: trainPeople.map((p) => ({ id: p.id, photos: p.photos.map((f) => f.file) })), validation: heldPeople.map((p) => ({ id: p.id, photos: p.photos.map((f) => f.file) })), skipped: faceFolder.skipped };
    const reportPath = values.report ?? `${values.out ?? join(pack.dir, HYPERNETWORK_CHECKPOINT)}.faces.json`;
    mkdirSync(dirname(reportPath), { recursive: true });
    writeFileSync(reportPath, `${JSON.stringify(report, null, 2)}\n`);
    for (const skip of faceFolder.skipped) process.stderr.write(`skipped ${skip.file}: ${skip.reason}\n`);
    if (!faceFolder.faceCheck.detector) process.stderr.write('photos not checked for a face (no --face-detector): every readable image is trained on\n');
    process.stderr.write(`${trainPeople.length} people to train on, ${heldPeople.length} held out, ${faceFolder.skipped.length} files skipped (report: ${reportPath})\n`);
    train = await folderPhase1Subjects(model, trainPeople);
    validation = await folderPhase1Subjects(model, heldPeople);
  } else {
    train =
      viewCount > 0
        ? [...(await viewSubjects('train', count, inputCount)), ...(await viewSubjects('extra', extraCount, inputCount))]
        : await Promise.all(
            identities.map(async (identity) => {
              const target = beta > 0 && values.lidb ? readPreOptimized(model, values.lidb, identity.id).lidb : undefined;
              if (beta > 0 && !(values.lidb && existsSync(preOptimizedPath(values.lidb, identity.id)))) throw new Error(`--beta > 0 needs --lidb with ${identity.id}'s pre-optimized file`);
              return preparePhase1Subject(model, identity.image, { ...(target ? { target } : {}), ...(gamma > 0 ? { labels: worldAttributeLabels(sampleIdentity(DEFAULT_WORLD.seed, worldIdentityNumber(identity.id))) } : {}) });
            }),
          );
    validation = viewCount > 0 ? await viewSubjects('validation', heldOut.length, 1) : await Promise.all(heldOut.map((v) => preparePhase1Subject(model, v.image)));
  }
  const steps = int('steps', values.steps) ?? 100;
  if (values.checkpoint) {
    // A resume continues the optimizer's trajectory: refuse one whose settings or data differ from the checkpoint's run.
    claimRunFile(`${values.checkpoint}.run.json`, {
      format: 'hdb.phase1.hypernetwork-run',
      baseModel: { id: model.id, sha256: model.sha256 },
      hypernetwork: model.hypernetwork!.config,
      lidb: model.lidb,
      settings: { batch: values.batch, lr: values.lr ?? null, alpha: values.alpha, beta, gamma, teacherWeight, schedule: lrSchedule, ...(lrSchedule === 'cosine' ? { steps } : {}), views: viewCount, inputs: inputCount, seed, identifier, identities: count, extraIdentities: extraCount, validation: heldOut.map((v) => v.id), ...(faceFolder ? { faces: faceFolder.people.map((p) => ({ id: p.id, photos: p.photos.map((f) => f.file) })) } : {}) },
    }, `the checkpoint ${values.checkpoint}`, !(values.resume && existsSync(values.checkpoint)));
  }
  const progress = progressFor('train hypernetwork');
  let lastStep = performance.now();
  const result = await trainHypernetwork(model, train, validation, {
    steps,
    batchSize: int('batch', values.batch) ?? 2,
    beta,
    ...(gamma > 0 ? { gamma, attributeGroups: WORLD_ATTRIBUTE_GROUPS } : {}),
    teacherWeight,
    schedule: lrSchedule,
    seed,
    ...(values.lr ? { learningRate: real('lr', values.lr)! } : {}),
    alpha: real('alpha', values.alpha) ?? 1,
    // The pre-optimized weights were learned for one identifier: train with it unless told otherwise.
    identifier,
    ...(values.checkpoint ? { checkpointPath: values.checkpoint, checkpointEvery: int('checkpoint-every', values['checkpoint-every']) ?? 10, resume: values.resume && existsSync(values.checkpoint) } : {}),
    validationEvery: int('validation-every', values['validation-every']) ?? 10,
    onProgress: (p) => {
      const now = performance.now();
      const seconds = (now - lastStep) / 1000;
      lastStep = now;
      if (values.log) appendFileSync(values.log, `${JSON.stringify({ time: new Date().toISOString(), ...p, seconds })}\n`);
      if (p.validationLoss !== undefined) progress.event('validation', { step: p.step, heldOutDiffusionLoss: p.validationLoss });
      progress.update({ done: p.step, total: p.steps, fields: { loss: p.loss, diffusion: p.diffusionLoss, ...(p.l2Loss !== undefined ? { l2: p.l2Loss } : {}), ...(p.attributeLoss !== undefined ? { attributes: p.attributeLoss } : {}), 'sec/step': seconds } });
    },
  });
  progress.finish();
  const out = values.out ?? join(pack.dir, HYPERNETWORK_CHECKPOINT);
  const stage = { steps, lr: values.lr ? real('lr', values.lr)! : null, schedule: lrSchedule === 'cosine' ? ('cosine' as const) : ('constant' as const), beta, gamma, teacherWeight };
  writeHypernetwork(out, result.params, {
    steps: String(steps), beta: String(beta), gamma: String(gamma), teacher_weight: String(teacherWeight), views: String(viewCount), inputs: String(inputCount), identities: String(count), extra_identities: String(extraCount),
    [TRAINING_STAGES_KEY]: appendTrainingStage(startingStages, stage),
  });
  console.log(JSON.stringify({ checkpoint: out, steps, finalLoss: result.losses.at(-1) ?? null, validation: result.validation }));
} else if (command === 'pretrain-encoder') {
  if (!values.out) throw new Error('pretrain-encoder needs --out FILE');
  const hyper = model.hypernetwork!;
  const photos = int('photos', values.photos) ?? 16;
  const labelled = async (split: 'train' | 'validation' | 'extra', n: number, perIdentity: number) => {
    const faces = [];
    for (const person of worldPhase1Identities(split, n, { inputs: perIdentity, views: 0, identifier: DEFAULT_IDENTIFIER })) {
      for (const input of person.inputs) faces.push({ pixels: await encoderPixels(model, input), labels: person.labels });
    }
    return faces;
  };
  const faces = [...(await labelled('train', count, photos)), ...(await labelled('extra', extraCount, photos))];
  const validation = await labelled('validation', int('validation', values.validation) ?? 4, 4);
  const steps = int('steps', values.steps) ?? 2000;
  const progress = progressFor('pretrain face encoder');
  const result = await pretrainFaceEncoder(hyper.config, hyper.params, faces, {
    steps,
    batchSize: int('batch', values.batch) ?? 64,
    learningRate: real('lr', values.lr) ?? 1e-3,
    groups: WORLD_ATTRIBUTE_GROUPS,
    seed,
    validation,
    validationEvery: int('validation-every', values['validation-every']) ?? 250,
    onProgress: (p) => {
      if (values.log) appendFileSync(values.log, `${JSON.stringify({ time: new Date().toISOString(), ...p })}\n`);
      if (p.validationAccuracy !== undefined) progress.event('validation', { step: p.step, heldOutAttributeAccuracy: p.validationAccuracy });
      progress.update({ done: p.step, total: p.steps, fields: { loss: p.loss } });
    },
  });
  progress.finish();
  writeHypernetwork(values.out, result.params, { encoder_pretraining: JSON.stringify({ steps, faces: faces.length, identities: count, extraIdentities: extraCount, validation: result.validation.at(-1) ?? null }) });
  console.log(JSON.stringify({ checkpoint: values.out, steps, finalLoss: result.losses.at(-1) ?? null, validation: result.validation }));
} else {
  throw new Error('usage: npm run phase1 -- <pre-optimize | pretrain-encoder | train> [options] (see gpu-runner/commands/phase1.ts)');
}
await shutdownSharedSessionHost();
