// Checking a weight file the edge did not get from a job (an import, docs/api.md "Importing weights"): the edge sends
// the file, the runner reads it against the model pack it serves with the same checks a generation applies to its
// weights, and answers what the file holds. Only the runner has the pack's structure and digest, so the edge asks.
import { z } from 'zod';
import { PersonalizationResult, WeightFile } from './events.ts';
import { WeightDtype } from './jobs.ts';

/** `POST /v1/weights/check` on the runner, signed like a job request: one native (`lidb`) file, inline. */
export const WeightsCheckRequest = z
  .object({
    data_base64: WeightFile.shape.data_base64,
    sha256: WeightFile.shape.sha256,
    byte_size: WeightFile.shape.byte_size,
  })
  .strict();
export type WeightsCheckRequest = z.infer<typeof WeightsCheckRequest>;

/**
 * `200`: the file fits the runner's base model; its figures as a personalization result reports them, and the dtype
 * its tensors are stored in. A file that does not fit is answered `422 {error: {code: "invalid_weights", message}}`.
 */
export const WeightsCheckResult = z
  .object({
    method: PersonalizationResult.shape.method,
    base_model_id: PersonalizationResult.shape.base_model_id,
    rank: PersonalizationResult.shape.rank,
    layers: PersonalizationResult.shape.layers,
    num_parameters: PersonalizationResult.shape.num_parameters,
    dtype: WeightDtype,
  })
  .strict();
export type WeightsCheckResult = z.infer<typeof WeightsCheckResult>;
