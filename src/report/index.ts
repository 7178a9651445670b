export { reportTable, reportMarkdown, writeReports } from './markdown.js';
export { accuracySpec, unitsSpec, renderSvg } from './plots.js';
export type { Report, RatioResult } from './types.js';
export { reportHtml, unitMapSvg, centroids, esc, filterSvg, filtersHtml } from './html.js';
