export { kmeans } from './kmeans.js';
export type { KMeansOptions, KMeansResult } from './kmeans.js';
export { agglomerative, dendrogram } from './agglomerative.js';
export type { Linkage, Merge, AgglomerativeResult } from './agglomerative.js';
export { mergeSites, foldedUnits, unitsAfter, clusterUnits, applyMerge, mergeModel, archOf, paramsWithUnits, ratioForBudget } from './merge.js';
export type { MergeSite, ClusterMethod, ClusterOptions, MergeOptions, MergeReport } from './merge.js';
export { l1Keep, applyPrune, pruneModel } from './prune.js';
export { modelStats, compare } from './stats.js';
export type { LayerStats, ModelStats, Comparison } from './stats.js';
