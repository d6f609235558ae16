export { createTrainer, GRAPH_OPTIMIZER_MIN_ELEMENTS, type Trainer, type TrainerOptions, type TrainerSaveTarget, type TrainStepResult, type OptimizerBackend } from './trainer.ts';
