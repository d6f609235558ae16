// From a contract job to an executor's input, and from an executor's output to the contract's result.
import { faceBoxInside, type BlobSource, type GenerationResult, type InputImage, type JobRequest, type PersonalizationResult } from '../../../contract/index.ts';
import { decodeInlineBlob, readBlob, sha256Hex, type BlobLimits } from '../inputs/blobs.ts';
import { decodeImage, encodePng } from '../inputs/images.ts';
import { InvalidInputError, type GenerateInput, type GenerateOutput, type PersonalizeInput, type PersonalizeOutput, type RgbImage, type SubjectPhoto } from './executor.ts';

export type InputLimits = BlobLimits & { maxImagePixels: number };

type PersonalizationRequest = Extract<JobRequest, { kind: 'personalization' }>;
type GenerationRequest = Extract<JobRequest, { kind: 'generation' }>;

/** Decoded images kept from the precheck up to this size, so execution does not decode them twice (memory bound). */
const KEEP_DECODED_PIXELS = 1024 * 1024;

/** Inline inputs already decoded and verified by `precheckJob`, by source object. */
export type PreparedInputs = { blobs: Map<BlobSource, Uint8Array>; images: Map<BlobSource, RgbImage> };

export const noPreparedInputs = (): PreparedInputs => ({ blobs: new Map(), images: new Map() });

/**
 * Checks what can be checked without network before a job is queued, so bad inline bytes get a 422 at once:
 * inline sizes and hashes, and inline images decoded in full (a truncated file only shows when decoded).
 */
export async function precheckJob(request: JobRequest, limits: InputLimits): Promise<PreparedInputs> {
  const prepared = noPreparedInputs();
  if (request.kind === 'generation') {
    const source = request.payload.weights.source;
    if ('data_base64' in source) prepared.blobs.set(source, decodeInlineBlob(source, 'weights', limits.maxBytes));
    return prepared;
  }
  for (const [index, image] of request.payload.images.entries()) {
    if (!('data_base64' in image.source)) continue;
    const label = `images[${index}]`;
    const bytes = decodeInlineBlob(image.source, label, limits.maxBytes);
    const decoded = await decodeImage(bytes, expectation(image, limits), label);
    checkFaceBox(image, decoded, label);
    if (decoded.width * decoded.height <= KEEP_DECODED_PIXELS) prepared.images.set(image.source, decoded);
    else prepared.blobs.set(image.source, bytes);
  }
  return prepared;
}

/** A face box must lie inside the image as decoded (upright, EXIF orientation applied): the edge only saw its header. */
function checkFaceBox(image: InputImage, decoded: RgbImage, label: string): void {
  const box = image.face_box;
  if (box && !faceBoxInside(box, decoded.width, decoded.height)) {
    throw new InvalidInputError(
      `${label}: face_box (x ${box.x}, y ${box.y}, ${box.width}×${box.height}) does not lie inside the image, which is ${decoded.width}×${decoded.height} upright`,
    );
  }
}

export async function personalizeInput(
  request: PersonalizationRequest,
  limits: InputLimits,
  prepared: PreparedInputs = noPreparedInputs(),
): Promise<PersonalizeInput> {
  const images: SubjectPhoto[] = [];
  for (const [index, image] of request.payload.images.entries()) {
    const label = `images[${index}]`;
    let decoded = prepared.images.get(image.source);
    if (!decoded) {
      const bytes = prepared.blobs.get(image.source) ?? (await readBlob(image.source, label, limits));
      decoded = await decodeImage(bytes, expectation(image, limits), label);
    }
    checkFaceBox(image, decoded, label);
    images.push(image.face_box ? { ...decoded, faceBox: image.face_box } : decoded);
  }
  return {
    jobId: request.job_id,
    method: request.payload.method,
    images,
    finetune: request.payload.finetune,
    outputs: request.payload.outputs,
  };
}

export async function generateInput(
  request: GenerationRequest,
  limits: InputLimits,
  prepared: PreparedInputs = noPreparedInputs(),
): Promise<GenerateInput> {
  const { weights, base_model_id, params } = request.payload;
  const bytes = prepared.blobs.get(weights.source) ?? (await readBlob(weights.source, 'weights', limits));
  return {
    jobId: request.job_id,
    weights: { format: weights.format, dtype: weights.dtype, bytes },
    baseModelId: base_model_id,
    params,
  };
}

export function personalizationResult(
  request: PersonalizationRequest,
  output: PersonalizeOutput,
): PersonalizationResult {
  return {
    kind: 'personalization',
    method: request.payload.method,
    base_model_id: output.baseModelId,
    rank: output.rank,
    layers: output.layers,
    num_parameters: output.numParameters,
    files: output.files.map((file) => ({
      format: file.format,
      dtype: file.dtype,
      data_base64: Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength).toString('base64'),
      sha256: sha256Hex(file.bytes),
      byte_size: file.bytes.byteLength,
    })),
  };
}

export async function generationResult(output: GenerateOutput): Promise<GenerationResult> {
  const images = await Promise.all(
    output.images.map(async ({ index, seed, image }) => {
      const png = await encodePng(image);
      return {
        index,
        content_type: 'image/png' as const,
        width: image.width,
        height: image.height,
        seed,
        data_base64: Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString('base64'),
        sha256: sha256Hex(png),
        byte_size: png.byteLength,
      };
    }),
  );
  return { kind: 'generation', images };
}

function expectation(image: PersonalizationRequest['payload']['images'][number], limits: InputLimits) {
  return { maxPixels: limits.maxImagePixels, contentType: image.content_type, width: image.width, height: image.height };
}
