export * from './activations.ts';
export * from './linear.ts';
export * from './group-norm.ts';
export * from './attention.ts';
export * from './geglu.ts';
export * from './timestep-embedding.ts';
export * from './upsample.ts';
export * from './losses.ts';
