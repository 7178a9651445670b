export { writeSafetensors, readSafetensors, saveCheckpoint, loadCheckpoint, checkArchHolds, CheckpointError, CHECKPOINT_KINDS } from './checkpoint.js';
export type { Checkpoint, CheckpointKind, TrainState } from './checkpoint.js';
export { fit, evaluate, modelRngs, TrainingDiverged, TrainingInterrupted } from './loop.js';
export type { FitOptions, FitResult, EpochRecord, EvalOptions, EvalResult } from './loop.js';
