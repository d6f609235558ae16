// A stand-in face detector for tests, with the UltraFace signature (face/detector.ts) and a rule simple enough to
// predict: a picture with contrast "has a face", a flat one does not. It tests the plumbing around a detector (input
// layout, output decoding, skipping, cropping), never detection quality.
import { add, concat, Graph, mul, reduceMean, reshape, serializeModel, sigmoid, sqrt, sub, tensor } from '../../onnx/index.ts';

/** Box of candidate 0 (the most probable), as fractions (x1, y1, x2, y2); candidate 1 is the whole image at half the score. */
export const CONTRAST_DETECTOR_BOX = [0.25, 0.2, 0.75, 0.8] as const;

/**
 * score = sigmoid(40 · (σ − 0.05)) with σ the per-channel standard deviation of the normalized input: a flat image scores
 * sigmoid(−2) ≈ 0.12, a rendered face well above 0.9.
 */
export function contrastFaceDetector(width: number, height: number): Uint8Array {
  const g = new Graph('contrast_face_detector');
  const x = g.input('input', 'float32', [1, 3, height, width]);
  // Per channel, so a flat coloured wall is flat: σ = mean over channels of each channel's standard deviation.
  const mean = reduceMean(x, [2, 3]);
  const sd = reduceMean(sqrt(add(sub(reduceMean(mul(x, x), [2, 3]), mul(mean, mean)), 1e-12)));
  const face = reshape(sigmoid(mul(sub(sd, 0.05), 40)), [1, 1, 1]);
  const faces = concat([face, mul(face, 0.5)], 1);
  g.output(concat([sub(1, faces), faces], 2), 'scores');
  const boxes = g.param('anchors', tensor('float32', [1, 2, 4], [...CONTRAST_DETECTOR_BOX, 0, 0, 1, 1]));
  g.output(add(boxes, mul(face, 0)), 'boxes');
  return serializeModel(g);
}
