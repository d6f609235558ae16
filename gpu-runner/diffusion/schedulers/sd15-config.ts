// Stable Diffusion 1.5's scheduler settings, the one definition shared by the reference folder, the tiny pack,
// scheduler and sampler tests, and the SD benchmark.

/** SD 1.5's published scheduler/scheduler_config.json (the source config of every sd15-tiny scheduler fixture). */
export const SD15_SCHEDULER_CONFIG = {
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
  clip_sample: false,
} as const;
