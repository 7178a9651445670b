export { reportTable, reportMarkdown, writeReports, writeCompressionHtml } from './markdown.js';
export { accuracySpec, unitsSpec, compressionUnitsSpec, renderSvg } from './plots.js';
export type { Report, RatioResult, CompressionView, ExplainView } from './types.js';
export { explainHtml, writeExplainHtml, weightDrawing, encodeRows, WEIGHTS_PER_LAYER } from './explain.js';
export type { WeightDrawing } from './explain.js';
export { reportHtml, compressionHtml, unitMapSvg, centroids, esc, filterSvg, filtersHtml, dendrogramSvg, dendrogramLayout, cutHeight } from './html.js';
