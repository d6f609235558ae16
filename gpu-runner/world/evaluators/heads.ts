// What the evaluator predicts: every identity attribute (for identity similarity, like the paper's face-recognition
// net) and every prompt-controlled context attribute (for prompt fidelity, like CLIP-T), each a softmax head.
import {
  ACCESSORIES,
  BACKGROUNDS,
  BEARDS,
  EYE_COLOURS,
  FACE_SHAPES,
  HAIR_COLOURS,
  HAIR_STYLES,
  MARKS,
  SKIN_TONES,
  STYLES,
  type Context,
  type Identity,
} from '../attributes.ts';

export interface Head {
  readonly name: string;
  readonly classes: number;
  /** Identity heads measure who is in the picture; context heads measure what the prompt asked for. */
  readonly group: 'identity' | 'context';
  label(identity: Identity, context: Context): number;
}

export const HEADS: readonly Head[] = [
  { name: 'skin', classes: SKIN_TONES.length, group: 'identity', label: (i) => i.skin },
  { name: 'hair_colour', classes: HAIR_COLOURS.length, group: 'identity', label: (i) => i.hairColour },
  { name: 'hair_style', classes: HAIR_STYLES.length, group: 'identity', label: (i) => HAIR_STYLES.indexOf(i.hairStyle) },
  { name: 'eye_colour', classes: EYE_COLOURS.length, group: 'identity', label: (i) => i.eyeColour },
  { name: 'face_shape', classes: FACE_SHAPES.length, group: 'identity', label: (i) => FACE_SHAPES.indexOf(i.faceShape) },
  { name: 'beard', classes: BEARDS.length, group: 'identity', label: (i) => BEARDS.indexOf(i.beard) },
  { name: 'mark', classes: MARKS.length, group: 'identity', label: (i) => MARKS.indexOf(i.mark) },
  { name: 'background', classes: BACKGROUNDS.length, group: 'context', label: (_, c) => c.background },
  { name: 'accessory', classes: ACCESSORIES.length, group: 'context', label: (_, c) => ACCESSORIES.indexOf(c.accessory) },
  { name: 'style', classes: STYLES.length, group: 'context', label: (_, c) => STYLES.indexOf(c.style) },
];

export const TOTAL_CLASSES = HEADS.reduce((n, h) => n + h.classes, 0);

/** Column offset of each head in the concatenated logits. */
export const HEAD_OFFSETS: readonly number[] = HEADS.map((_, k) => HEADS.slice(0, k).reduce((n, h) => n + h.classes, 0));

/** One-hot targets for every head, concatenated: [TOTAL_CLASSES]. */
export function oneHotTargets(identity: Identity, context: Context): Float32Array {
  const out = new Float32Array(TOTAL_CLASSES);
  HEADS.forEach((head, k) => {
    out[HEAD_OFFSETS[k]! + head.label(identity, context)] = 1;
  });
  return out;
}
