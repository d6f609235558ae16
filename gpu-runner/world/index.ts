export * from './attributes.ts';
export * from './caption.ts';
export * from './dataset.ts';
export * from './png.ts';
export * from './render.ts';
export * from './sample.ts';
export * from './styles.ts';
