// How the reports write a figure.
import type { FinetuneSeeds } from './types.js';

/** an accuracy or share, in percent with two decimals */
export const pct = (x: number): string => (100 * x).toFixed(2) + '%';

/** an accuracy after fine-tuning: with several seeds, their mean ± their standard deviation (points) */
export const tunedPct = (x: number, seeds?: FinetuneSeeds): string => (seeds ? `${pct(x)} ± ${(100 * seeds.std).toFixed(2)}` : pct(x));
