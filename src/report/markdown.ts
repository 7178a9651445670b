// The reproduction's report files: report.json (every figure), report.md (the tables) and the plots.
// Each file is written whole or not at all (a temporary file renamed into place).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/files.js';
import { accuracySpec, renderSvg, unitsSpec } from './plots.js';
import type { Report } from './types.js';

const pct = (x: number) => (100 * x).toFixed(2) + '%';

/** the results as one markdown table, a row per merge ratio */
export function reportTable(r: Report): string {
  const rep = r.results.some((x) => x.accuracy.repaired !== undefined);
  const lines = [
    `| ratio | params (after / before) | compression | FLOPs ratio | measured speedup (batch 128) | original | merged |${rep ? ' merged + repair |' : ''} merged + fine-tune | pruned | pruned + fine-tune |`,
    `|---|---|---|---|---|---|---|${rep ? '---|' : ''}---|---|---|`,
    ...r.results.map((x) => `| ${x.ratio} | ${x.params.after.toLocaleString('en')} / ${x.params.before.toLocaleString('en')} | ${pct(x.compressionRatio)} | ${x.speedup.flops.toFixed(2)}× | ${x.speedup.measured.toFixed(2)}× | ${pct(x.accuracy.original)} | ${pct(x.accuracy.merged)} |${rep ? ` ${x.accuracy.repaired === undefined ? '—' : pct(x.accuracy.repaired)} |` : ''} ${pct(x.accuracy.finetuned)} | ${pct(x.accuracy.pruned)} | ${pct(x.accuracy.prunedFinetuned)} |`),
  ];
  return lines.join('\n');
}

/** report.md's text */
export function reportMarkdown(r: Report): string {
  const units = r.results.map((x) => `Ratio ${x.ratio}: ` + x.units.map((u) => `${u.layer} ${u.before}→${u.after}`).join(', ')).join('\n\n');
  const explain = r.results.map((x) => [
    `### Ratio ${x.ratio}`, '',
    '| layer | units → clusters | cluster sizes (min / median / max, singletons) | spread | next layer\'s output moved |',
    '|---|---|---|---|---|',
    ...x.explain.map((e) => `| ${e.layer} | ${e.units} → ${e.clusters} | ${e.sizes.min} / ${e.sizes.median} / ${e.sizes.max}, ${e.sizes.singletons} | ${(100 * e.spread).toFixed(1)}% | ${(100 * e.outputShift).toFixed(1)}% |`),
  ].join('\n')).join('\n\n');
  return [
    `# neuronmerge ${r.command}`, '',
    `Data: ${r.data}. Seed ${r.seed}. Machine: ${r.machine}. Took ${r.seconds.toFixed(0)} s.${r.recalibrated ? ` The merged and the pruned models' batch norms were re-estimated on ${r.recalibrated} training images before they were measured.` : ''}`, '',
    `Original (${r.model}): ${pct(r.original.accuracy)} test accuracy after ${r.original.epochs} epochs, ${r.original.params.toLocaleString('en')} parameters, ${r.original.flops.toLocaleString('en')} FLOPs per image.`, '',
    reportTable(r), '',
    '## The original', '',
    `Test accuracy per class: ${r.original.perClass.map((c) => `${c.name} ${pct(c.accuracy)}`).join(', ')}.`, '',
    ...(r.original.batchNorm.length ? [
      'Batch-norm scales |γ|/√(var+ε) per layer: how unequal the units are, and how many are next to silent (below 1% of the layer\'s largest).', '',
      '| layer | units | min | median | max | below 1% of max |', '|---|---|---|---|---|---|',
      ...r.original.batchNorm.map((b) => `| ${b.layer} | ${b.units} | ${b.min.toPrecision(3)} | ${b.median.toPrecision(3)} | ${b.max.toPrecision(3)} | ${b.small} |`), '',
    ] : []),
    '## Units per layer', '', units, '',
    '## What merging did to each layer', '',
    'Spread: a unit\'s mean distance to its cluster\'s centre (incoming weights and bias, batch norm folded), relative to the units\' mean norm. Output moved: how much the next layer\'s output changed on 256 test inputs, ‖Δz‖/‖z‖, when this layer alone is merged.', '',
    explain, '',
    '![accuracy against compression](accuracy.svg)', '',
    '![units per layer](units.svg)', '',
  ].join('\n');
}

/** report.json, report.md, accuracy.svg and units.svg in `dir` (made if missing) */
export async function writeReports(dir: string, r: Report): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const json = {
    ...r,
    // the headline fields, for the first (or only) ratio
    params: r.results[0] ? r.results[0].params : null,
    compressionRatio: r.results[0]?.compressionRatio ?? null,
    accuracy: r.results[0]?.accuracy ?? null,
    speedup: r.results[0]?.speedup ?? null,
  };
  writeFileAtomic(join(dir, 'report.json'), JSON.stringify(json, null, 2) + '\n');
  writeFileAtomic(join(dir, 'report.md'), reportMarkdown(r));
  writeFileAtomic(join(dir, 'accuracy.svg'), await renderSvg(accuracySpec(r)));
  writeFileAtomic(join(dir, 'units.svg'), await renderSvg(unitsSpec(r)));
}
