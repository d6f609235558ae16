// Is there a face in this photo, and where? Phase 1 on a folder a user brings must skip photos without a face rather
// than teach the hypernetwork a wall, and crops the input photo around the face it found (docs/hypernetwork.md).
//
// We do not train or ship a detector: a face detector for real photos needs real training data this project does not
// have. The user brings one as an ONNX file in the UltraFace convention (the ONNX model zoo's "ultraface" models,
// version-RFB-320 / RFB-640): one input [1, 3, H, W], RGB, (pixel − 127) / 128; outputs `scores` [1, N, 2]
// (background, face) and `boxes` [1, N, 4] (x1, y1, x2, y2, each a fraction of the image's width or height).
import sharp from 'sharp';
import { createSessionRunner, type SessionRunner } from '../../onnx/runtime/index.ts';
import type { ExecutionProviderPreference } from '../../onnx/runtime/execution-provider.ts';
import { float32Data, float32Tensor } from '../../onnx/runtime/tensor.ts';
import type { FaceBox, RgbPixels } from './preprocess.ts';

export interface DetectedFace {
  /** The detector's face probability for this box. */
  readonly score: number;
  /** In pixel coordinates of the image given to detect(), clamped to it. */
  readonly box: FaceBox;
}

export interface FaceDetectorOptions {
  /** The detector's input size (320 × 240 for version-RFB-320, 640 × 480 for RFB-640). */
  readonly width?: number;
  readonly height?: number;
  /** Where the detector runs (phase 1's setting); onnxruntime's CPU provider when absent. */
  readonly executionProvider?: ExecutionProviderPreference;
}

export class FaceDetector {
  private constructor(
    private readonly runner: SessionRunner,
    private readonly inputName: string,
    readonly width: number,
    readonly height: number,
  ) {}

  /** Opens an UltraFace-convention detector from an `.onnx` file or its bytes; refuses other signatures by name. */
  static async open(model: string | Uint8Array, options: FaceDetectorOptions = {}): Promise<FaceDetector> {
    const width = options.width ?? 320;
    const height = options.height ?? 240;
    if (![width, height].every((n) => Number.isInteger(n) && n >= 8 && n <= 4096)) throw new Error(`face detector input size must be whole pixels in 8..4096, got ${width}×${height}`);
    const runner = await createSessionRunner(model, { executionProvider: options.executionProvider ?? 'cpu' });
    const missing = ['scores', 'boxes'].filter((name) => !runner.outputNames.includes(name));
    if (runner.inputNames.length !== 1 || missing.length > 0) {
      await runner.close();
      throw new Error(
        `face detector: expected one input and outputs "scores" [1, N, 2] and "boxes" [1, N, 4] (the UltraFace convention); the model has inputs [${runner.inputNames.join(', ')}] and outputs [${runner.outputNames.join(', ')}]`,
      );
    }
    return new FaceDetector(runner, runner.inputNames[0]!, width, height);
  }

  /** The most probable face, or null when the detector returns no candidate or its best box is empty in the image. */
  async detect(image: RgbPixels): Promise<DetectedFace | null> {
    const { width, height } = this;
    const resized = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).resize(width, height, { fit: 'fill' }).raw().toBuffer();
    const plane = width * height;
    const input = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) input[c * plane + i] = (resized[i * 3 + c]! - 127) / 128;
    const outputs = await this.runner.run({ [this.inputName]: float32Tensor(input, [1, 3, height, width]) });
    const scores = float32Data(outputs, 'scores');
    const boxes = float32Data(outputs, 'boxes');
    const candidates = scores.length / 2;
    if (!Number.isInteger(candidates) || boxes.length !== candidates * 4) {
      throw new Error(`face detector: ${scores.length} scores and ${boxes.length} box coordinates do not describe N boxes as [1, N, 2] and [1, N, 4]`);
    }
    let best = -1;
    for (let n = 0; n < candidates; n++) if (best < 0 || scores[2 * n + 1]! > scores[2 * best + 1]!) best = n;
    if (best < 0) return null;
    const clamp = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
    const x1 = clamp(boxes[4 * best]! * image.width, image.width);
    const y1 = clamp(boxes[4 * best + 1]! * image.height, image.height);
    const x2 = clamp(boxes[4 * best + 2]! * image.width, image.width);
    const y2 = clamp(boxes[4 * best + 3]! * image.height, image.height);
    if (x2 - x1 < 1 || y2 - y1 < 1) return null;
    return { score: scores[2 * best + 1]!, box: { x: x1, y: y1, width: x2 - x1, height: y2 - y1 } };
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}
