export { writeSafetensors, readSafetensors, saveCheckpoint, loadCheckpoint, CheckpointError } from './checkpoint.js';
export type { Checkpoint, TrainState } from './checkpoint.js';
export { fit, evaluate, modelRngs, TrainingDiverged } from './loop.js';
export type { FitOptions, FitResult, EpochRecord, EvalResult } from './loop.js';
export { trainLenet, trainDbn, trainVgg } from './recipes.js';
export type { RecipeOptions, RecipeResult } from './recipes.js';
