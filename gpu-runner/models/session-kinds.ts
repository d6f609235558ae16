// The kinds of session a job opens, one per network role, as the runner reports them (/readyz, /metrics, the startup
// log): an operator sees for each whether it runs on CUDA. Trainers' gradient sessions report as 'trainer'
// (onnx/training/trainer.ts).
export const SESSION_KINDS = {
  hypernetwork: 'hypernetwork',
  vaeEncoder: 'vae-encoder',
  textEncoder: 'text-encoder',
  unet: 'unet',
  vaeDecoder: 'vae-decoder',
  trainer: 'trainer',
} as const;

export type JobSessionKind = (typeof SESSION_KINDS)[keyof typeof SESSION_KINDS];

/** Every kind a job can open, in the order a personalization then a generation opens them. */
export const JOB_SESSION_KINDS: readonly JobSessionKind[] = Object.values(SESSION_KINDS);
