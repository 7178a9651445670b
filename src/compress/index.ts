export { kmeans } from './kmeans.js';
export type { KMeansOptions, KMeansResult } from './kmeans.js';
export { agglomerative, dendrogram } from './agglomerative.js';
export type { Linkage, Merge, AgglomerativeResult } from './agglomerative.js';
