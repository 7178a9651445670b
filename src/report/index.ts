export { reportTable, reportMarkdown, writeReports, writeCompressionHtml } from './markdown.js';
export { accuracySpec, unitsSpec, compressionUnitsSpec, renderSvg } from './plots.js';
export type { Report, RatioResult, CompressionView } from './types.js';
export { reportHtml, compressionHtml, unitMapSvg, centroids, esc, filterSvg, filtersHtml, dendrogramSvg, dendrogramLayout, cutHeight } from './html.js';
