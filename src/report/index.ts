export { reportTable, reportMarkdown, writeReports, writeCompressionHtml } from './markdown.js';
export { accuracySpec, dropSpec, unitsSpec, compressionUnitsSpec, renderSvg } from './plots.js';
export type { Report, RatioResult, CompressionView, ExplainView, FinetuneSeeds, PublishedPoint } from './types.js';
export { explainHtml, writeExplainHtml, weightDrawing, encodeRows, WEIGHTS_PER_LAYER } from './explain.js';
export type { WeightDrawing } from './explain.js';
export { reportHtml, compressionHtml, unitMapSvg, centroids, esc, filterSvg, filtersHtml, dendrogramSvg, dendrogramLayout, cutHeight } from './html.js';
