// Captions from attributes. Pretraining captions describe identity in words; a share of them also carry a rare
// identifier token (e.g. "sks") in place of the description, so "a sketch of a sks face" is in distribution
// (docs/world.md: the identifier tokens appear in pretraining captions too).
import {
  BACKGROUNDS,
  EYE_COLOURS,
  HAIR_COLOURS,
  SKIN_TONES,
  type Context,
  type Identity,
} from './attributes.ts';

export const DEFAULT_IDENTIFIER = 'sks';

/** The paper's class noun phrase: "a [V] face". */
export function subjectPhrase(identifier: string): string {
  return `${identifier} face`;
}

export function describeIdentity(identity: Identity): string {
  const hair =
    identity.hairStyle === 'bald' ? 'a bald head' : `${identity.hairStyle} ${HAIR_COLOURS[identity.hairColour]!.name} hair`;
  const parts = [
    `${SKIN_TONES[identity.skin]!.name} skin`,
    hair,
    `${EYE_COLOURS[identity.eyeColour]!.name} eyes`,
    `${identity.faceShape === "oval" ? "an" : "a"} ${identity.faceShape} face shape`,
  ];
  if (identity.beard === 'full') parts.push('a beard');
  if (identity.mark !== 'none') parts.push(identity.mark === 'mole' ? 'a mole' : 'freckles');
  return parts.join(', ');
}

function styleLead(context: Context): string {
  switch (context.style) {
    case 'photo':
      return 'a photo of';
    case 'sketch':
      return 'a sketch of';
    case 'pixel art':
      return 'pixel art of';
  }
}

export function describeContext(context: Context): string {
  const parts = [`on a ${BACKGROUNDS[context.background]!.name} background`];
  if (context.accessory === 'hat') parts.push('wearing a hat');
  if (context.accessory === 'glasses') parts.push('wearing glasses');
  return parts.join(', ');
}

/** "a sketch of a face with red hair, … on a blue background, wearing a hat". */
export function captionWithDescription(identity: Identity, context: Context): string {
  return `${styleLead(context)} a face with ${describeIdentity(identity)}, ${describeContext(context)}`;
}

/** "a sketch of a sks face on a blue background, wearing a hat": identity carried by the identifier alone. */
export function captionWithIdentifier(identifier: string, context: Context): string {
  return `${styleLead(context)} a ${subjectPhrase(identifier)}, ${describeContext(context)}`;
}
