// The reproduction's report files: report.json (every figure), report.md (the tables) and the plots.
// Each file is written whole or not at all (a temporary file renamed into place).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/files.js';
import { compressionHtml, reportHtml } from './html.js';
import { accuracySpec, compressionUnitsSpec, dropSpec, renderSvg, rowLabel, unitsSpec } from './plots.js';

export { rowLabel };
import type { CompressionView, FinetuneSeeds, Report } from './types.js';
import { pct, tunedPct } from './format.js';


const RULE_TEXT: Record<string, string> = {
  mean: 'mean (the paper\'s: each cluster becomes its members\' average, the next layer sums their outgoing weights)',
  scaled: 'scaled (clusters by direction; the next layer reads each member through its norm)',
  medoid: 'medoid (each cluster keeps its most representative member, the others\' outgoing weights added to it by scale)',
};

/** the merging rules a report has, in order (a report of one rule names it 'merged') */
export function rulesOf(r: Report): string[] {
  return r.results[0]?.merges?.map((m) => m.rule) ?? ['mean'];
}

/** the results as one markdown table, a row per merge ratio */
export function reportTable(r: Report): string {
  const rep = r.results.some((x) => x.accuracy.repaired !== undefined);
  const rules = rulesOf(r);
  const many = rules.length > 1;
  const repCell = (x: Report['results'][number]) => (rep ? ` ${x.accuracy.repaired === undefined ? '—' : pct(x.accuracy.repaired)} |` : '');
  // statistics repair applies to the first rule's merge: its column follows that rule's
  const mergedCols = many ? rules.map((m, i) => ` merged (${m}) |${i === 0 && rep ? ` ${m} + repair |` : ''} ${m} + fine-tune |`).join('') : ` merged |${rep ? ' merged + repair |' : ''} merged + fine-tune |`;
  const mergedCells = (x: Report['results'][number]) => many
    ? rules.map((m, i) => {
      const v = x.merges!.find((y) => y.rule === m)!;
      return ` ${pct(v.merged)} |${i === 0 ? repCell(x) : ''} ${tunedPct(v.finetuned, v.seeds)} |`;
    }).join('')
    : ` ${pct(x.accuracy.merged)} |${repCell(x)} ${tunedPct(x.accuracy.finetuned, x.seeds?.finetuned)} |`;
  const cols = (mergedCols.match(/\|/g) ?? []).length;
  const lines = [
    `| ratio | params (after / before) | compression | FLOPs ratio | measured speedup (batch 128) | original |${mergedCols} pruned | pruned + fine-tune |`,
    `|---|---|---|---|---|---|${'---|'.repeat(cols)}---|---|`,
    ...r.results.map((x) => `| ${rowLabel(x)} | ${x.params.after.toLocaleString('en')} / ${x.params.before.toLocaleString('en')} | ${pct(x.compressionRatio)} | ${x.speedup.flops.toFixed(2)}× | ${x.speedup.measured.toFixed(2)}× | ${pct(x.accuracy.original)} |${mergedCells(x)} ${pct(x.accuracy.pruned)} | ${tunedPct(x.accuracy.prunedFinetuned, x.seeds?.prunedFinetuned)} |`),
  ];
  return lines.join('\n');
}

/** each seed's accuracy after fine-tuning, a row per compressed model */
function seedsMarkdown(r: Report): string {
  const seeds = r.finetuneSeeds!;
  // mean: the row's accuracy after fine-tuning (the seeds' mean)
  const line = (row: string, model: string, mean: number, f?: FinetuneSeeds) => (f ? [`| ${row} | ${model} | ${f.accuracy.map(pct).join(' | ')} | ${pct(mean)} | ${(100 * f.std).toFixed(2)} | ${(100 * (f.max - f.min)).toFixed(2)} |`] : []);
  return [
    '## Fine-tuning seeds', '',
    `Every compressed model was fine-tuned ${seeds.length} times from the same weights, with seeds ${seeds.join(', ')} (the order of the training images, their crops, flips and Cutout); the tables above show the mean ± the standard deviation (points).`, '',
    `| row | model | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean | standard deviation | highest − lowest |`,
    `|---|---|${'---|'.repeat(seeds.length + 3)}`,
    ...r.results.flatMap((x) => [
      ...(x.merges ?? []).flatMap((m) => line(rowLabel(x), `merged (${m.rule})`, m.finetuned, m.seeds)),
      ...line(rowLabel(x), 'pruned (L1)', x.accuracy.prunedFinetuned, x.seeds?.prunedFinetuned),
    ]),
  ].join('\n');
}

/** report.md's text */
export function reportMarkdown(r: Report): string {
  const units = r.results.map((x) => `${x.budget ? `Budget ${x.budget.fraction} (${x.budget.allocate}; ratios ${x.budget.ratios.map((v) => +v.toFixed(3)).join(', ')})` : `Ratio ${x.ratio}`}: ` + x.units.map((u) => `${u.layer} ${u.before}→${u.after}`).join(', ')).join('\n\n');
  const explain = r.results.map((x) => [
    `### ${x.budget ? `Budget ${x.budget.fraction}` : `Ratio ${x.ratio}`}`, '',
    '| layer | units → clusters | cluster sizes (min / median / max, singletons) | spread | next layer\'s output moved |',
    '|---|---|---|---|---|',
    ...x.explain.map((e) => `| ${e.layer} | ${e.units} → ${e.clusters} | ${e.sizes.min} / ${e.sizes.median} / ${e.sizes.max}, ${e.sizes.singletons} | ${(100 * e.spread).toFixed(1)}% | ${(100 * e.outputShift).toFixed(1)}% |`),
  ].join('\n')).join('\n\n');
  return [
    `# neuronmerge ${r.command}`, '',
    `Data: ${r.data}. Seed ${r.seed}. Machine: ${r.machine}. Took ${r.seconds.toFixed(0)} s.${r.recalibrated ? ` The merged and the pruned models' batch norms were re-estimated on ${r.recalibrated} training images${r.recalibrateCutout ? ` (Cutout ${r.recalibrateCutout}×${r.recalibrateCutout})` : ''} before they were measured.` : ''}${r.finetune ? ` Fine-tuning: ${r.finetune.epochs} epochs, ${r.finetune.schedule} schedule${r.finetune.lr !== undefined ? ` from learning rate ${r.finetune.lr}` : ''}${r.finetune.weightDecay !== undefined ? `, weight decay ${r.finetune.weightDecay}` : ''}${r.finetune.distill ? `, distilled from the original (temperature ${r.finetune.distill.temperature}, weight ${r.finetune.distill.weight})` : ''}${r.finetune.cutout ? `, Cutout ${r.finetune.cutout}×${r.finetune.cutout}` : ''}.` : ''}`, '',
    `Merging rules: ${rulesOf(r).map((m) => RULE_TEXT[m] ?? m).join('; ')}. Pruned: the units with the smallest L1 norm, the same number per layer.${r.multipleOf ? ` Every layer's units rounded to a multiple of ${r.multipleOf} (to the nearest at a ratio, down for a budget).` : ''}`, '',
    ...(r.notes?.length ? [...r.notes.map((n) => `Note: ${n}.`), ''] : []),
    `Original (${r.model}): ${pct(r.original.accuracy)} test accuracy after ${r.original.epochs} epochs, ${r.original.params.toLocaleString('en')} parameters, ${r.original.flops.toLocaleString('en')} FLOPs per image.`, '',
    reportTable(r), '',
    ...(r.finetuneSeeds && r.finetuneSeeds.length > 1 ? [seedsMarkdown(r), ''] : []),
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
    '![accuracy change from the original after fine-tuning against compression](drop.svg)', '',
    ...(r.published?.length ? [`Published compressions of the same network, each from its own original: ${r.published.map((p) => `${p.method} ${(100 * p.drop).toFixed(2)} points at ${(100 * p.removed).toFixed(1)}% removed`).join('; ')}.`, ''] : []),
    '![units per layer](units.svg)', '',
  ].join('\n');
}

/** report.json, report.md, report.html, accuracy.svg, drop.svg and units.svg in `dir` (made if missing) */
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
  const accuracy = await renderSvg(accuracySpec(r)), drop = await renderSvg(dropSpec(r)), units = await renderSvg(unitsSpec(r));
  writeFileAtomic(join(dir, 'accuracy.svg'), accuracy);
  writeFileAtomic(join(dir, 'drop.svg'), drop);
  writeFileAtomic(join(dir, 'units.svg'), units);
  writeFileAtomic(join(dir, 'report.html'), reportHtml(r, { accuracy, drop, units }));
}

/** the page of a merge, written to `file` (whole or not at all) */
export async function writeCompressionHtml(file: string, v: CompressionView): Promise<void> {
  writeFileAtomic(file, compressionHtml(v, { units: await renderSvg(compressionUnitsSpec(v)) }));
}
