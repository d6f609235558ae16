export type { Optimizer, OptimizerState, ParamSet } from './types.ts';
export { adam, adamW, ADAM_DEFAULTS, ADAMW_DEFAULT_WEIGHT_DECAY, type AdamConfig, type ResolvedAdamConfig } from './adam.ts';
export { sgd, type SgdConfig, type ResolvedSgdConfig } from './sgd.ts';
export { constantSchedule, linearWarmupSchedule, cosineSchedule, type LearningRateSchedule, type CosineScheduleConfig } from './schedule.ts';
export { clipByGlobalNorm, globalNorm, CLIP_NORM_EPS } from './clip.ts';
export { saveCheckpoint, loadCheckpoint, restoreOptimizerState, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type TrainingCheckpoint } from './checkpoint.ts';
export { buildAdamGraph, appendAdamUpdate, appendGlobalNormClip, adamGraphNames, type AdamFamilyOptimizer } from './adam-graph.ts';
