// Phase 1 from a folder of face photos a user brings: one subfolder per person (several photos of the same person),
// or a flat folder where each photo is its own person. Any file names; a photo may have a caption beside it
// (`<photo>.txt`, containing the identifier, e.g. "a photo of a sks face at the beach"), else "a <identifier> face".
// Files that are not readable images are skipped and listed with the reason, never silently dropped; with a face
// detector (face/detector.ts), so are photos in which it finds no face, and the input crop follows the face it found.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import type { FaceDetector } from '../face/detector.ts';
import { decodeFaceImage, FaceImageError, type FaceBox, type RgbPixels } from '../face/preprocess.ts';
import { promptFor } from '../finetune/fast-finetune.ts';
import type { PersonalizationModel } from '../model.ts';
import { type Phase1Subject, preparePhase1Subject, preparePhase1View } from './train-hypernetwork.ts';

export interface FolderPhoto {
  /** Path relative to the folder. */
  readonly file: string;
  readonly bytes: Uint8Array;
  readonly caption: string;
  /** The detected face and the detector's score for it (with a detector only). */
  readonly face?: { readonly box: FaceBox; readonly score: number };
}

export interface FolderPerson {
  /** File-name-safe id from the subfolder (or photo) name. */
  readonly id: string;
  readonly photos: readonly FolderPhoto[];
}

export interface FaceFolder {
  readonly people: readonly FolderPerson[];
  readonly skipped: readonly { file: string; reason: string }[];
  /** Whether each photo was checked for a face, and at what detector score. */
  readonly faceCheck: { readonly detector: boolean; readonly minScore: number | null };
}

export interface FaceFolderOptions {
  readonly identifier: string;
  /** Photos whose best face scores below minScore are skipped; none are checked without a detector. */
  readonly detector?: FaceDetector;
  /** Default 0.7, the UltraFace models' usual confidence threshold. */
  readonly minFaceScore?: number;
}

export const DEFAULT_MIN_FACE_SCORE = 0.7;

const CAPTION_EXTENSION = '.txt';
const safeId = (name: string) => name.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_') || '_';

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .map((name) => join(dir, name));
}

/** Reads a face folder: every file that decodes as an image is a photo; captions are `.txt` files beside photos. */
export async function readFaceFolder(dir: string, options: FaceFolderOptions): Promise<FaceFolder> {
  const minScore = options.minFaceScore ?? DEFAULT_MIN_FACE_SCORE;
  if (!(minScore >= 0 && minScore <= 1)) throw new Error(`the minimum face score must be in [0, 1], got ${minScore}`);
  const skipped: { file: string; reason: string }[] = [];
  const top = listFiles(dir);
  const groups: { id: string; files: string[] }[] = [];
  const loose: string[] = [];
  for (const path of top) {
    if (statSync(path).isDirectory()) groups.push({ id: safeId(basename(path)), files: listFiles(path).filter((f) => statSync(f).isFile()) });
    else loose.push(path);
  }
  // A flat folder: each photo is its own person.
  for (const path of loose) if (extname(path).toLowerCase() !== CAPTION_EXTENSION) groups.push({ id: safeId(basename(path, extname(path))), files: [path] });
  for (const path of loose) if (extname(path).toLowerCase() === CAPTION_EXTENSION && !loose.some((p) => p !== path && `${p}${CAPTION_EXTENSION}` === path)) skipped.push({ file: relative(dir, path), reason: 'a caption without a photo beside it' });

  const people: FolderPerson[] = [];
  const seen = new Set<string>();
  for (const group of groups) {
    const photos: FolderPhoto[] = [];
    for (const path of group.files) {
      if (extname(path).toLowerCase() === CAPTION_EXTENSION) continue;
      const file = relative(dir, path);
      const bytes = new Uint8Array(readFileSync(path));
      let pixels: RgbPixels;
      try {
        // Decoding checks what every later stage relies on (format, size, truncation).
        pixels = await decodeFaceImage(bytes);
      } catch (error) {
        if (!(error instanceof FaceImageError)) throw error;
        skipped.push({ file, reason: error.message });
        continue;
      }
      let face: FolderPhoto['face'];
      if (options.detector) {
        const found = await options.detector.detect(pixels);
        if (!found || found.score < minScore) {
          skipped.push({ file, reason: `no face found: the face detector's best score is ${(found?.score ?? 0).toFixed(3)}, below ${minScore}` });
          continue;
        }
        face = { box: found.box, score: found.score };
      }
      let caption = promptFor(options.identifier);
      try {
        caption = readFileSync(`${path}${CAPTION_EXTENSION}`, 'utf8').trim();
      } catch {
        // No caption: the identifier phrase alone.
      }
      if (!caption.includes(options.identifier)) {
        skipped.push({ file, reason: `its caption does not contain the identifier "${options.identifier}"` });
        continue;
      }
      photos.push({ file, bytes, caption, ...(face ? { face } : {}) });
    }
    if (photos.length === 0) continue;
    let id = group.id;
    for (let n = 2; seen.has(id); n++) id = `${group.id}-${n}`;
    seen.add(id);
    people.push({ id, photos });
  }
  return { people, skipped, faceCheck: { detector: options.detector !== undefined, minScore: options.detector ? minScore : null } };
}

/**
 * Phase-1 subjects of a folder's people: each photo is an input (cropped around its detected face, if any); the
 * person's other photos (alone: itself), whole, are its views.
 */
export async function folderPhase1Subjects(model: PersonalizationModel, people: readonly FolderPerson[]): Promise<Phase1Subject[]> {
  const subjects: Phase1Subject[] = [];
  for (const person of people) {
    const views = await Promise.all(person.photos.map((photo) => preparePhase1View(model, photo.bytes, photo.caption)));
    for (const [i, photo] of person.photos.entries()) {
      const others = views.filter((_, j) => j !== i);
      subjects.push(await preparePhase1Subject(model, photo.bytes, { views: others.length > 0 ? others : views, ...(photo.face ? { box: photo.face.box } : {}) }));
    }
  }
  return subjects;
}
