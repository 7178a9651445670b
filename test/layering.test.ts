// The layering: datasets and tensor/backend at the bottom, then nn/optim/models, then train, onnx and
// compress, then report and experiment, with the command on top. Read from the import statements of
// the sources themselves: nothing imports a folder above its own (or a sibling of the same rank), and
// no import circle joins files of different folders.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const L = suite('layering');
const root = process.cwd();
const RANK: Record<string, number> = {
  'src/runtime': 0, 'src/backend': 0, 'src/tensor': 1, datasets: 2, 'src/nn': 3, 'src/optim': 3, 'src/models': 4,
  'src/train': 5, 'src/compress': 5, 'src/onnx': 5, 'src/report': 6, 'src/experiment': 7, 'src/cli': 8, src: 9,
};

function files(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(join(root, p)).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** file → the project files it imports (type-only imports included: they tie the layers too) */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of [...files('src'), ...files('datasets')]) {
    const text = readFileSync(join(root, f), 'utf8');
    const deps = [...text.matchAll(/(?:^|\n)(?:import|export)\b[^;'"]*?'(\.[^']+)'/g), ...text.matchAll(/import\('(\.[^']+)'\)/g)]
      .map((m) => relative(root, resolve(root, dirname(f), m[1])).replace(/\.js$/, '.ts'));
    g.set(f, deps);
  }
  return g;
}
const folderOf = (f: string) => dirname(f);

L('a file imports only from its own folder or from folders below it', () => {
  const bad: string[] = [];
  for (const [f, deps] of graph()) {
    const own = RANK[folderOf(f)];
    assert.ok(own !== undefined, `${f}: its folder has no place in the layering (add it to RANK)`);
    for (const d of deps) {
      const r = RANK[folderOf(d)];
      if (r === undefined) bad.push(`${f} imports ${d}, outside the layered folders`);
      else if (folderOf(d) !== folderOf(f) && r >= own) bad.push(`${f} (${folderOf(f)}) imports ${d} (${folderOf(d)})`);
    }
  }
  assert.equal(bad, []);
});

L('nothing imports the command', () => {
  const hits = [...graph()].flatMap(([f, deps]) => (folderOf(f) === 'src/cli' ? [] : deps.filter((d) => d.startsWith('src/cli/')).map((d) => `${f} → ${d}`)));
  assert.equal(hits, []);
});

L('no import circle joins files of different folders (strongly connected components)', () => {
  const g = graph();
  // Tarjan's algorithm
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), on = new Set<string>(), stack: string[] = [];
  const circles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (new Set(comp.map(folderOf)).size > 1) circles.push(comp);
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  assert.equal(circles, []);
});

L('the check sees real imports (a broken graph would pass the tests above vacuously)', () => {
  const g = graph();
  assert.ok(g.get('src/cli/index.ts')!.includes('src/experiment/reproduce.ts'));
  assert.ok(g.get('src/compress/merge.ts')!.includes('src/compress/sites.ts'));
  assert.ok(g.get('src/experiment/task.ts')!.includes('datasets/catalog.ts'));
  // a side-effect import and a multi-line one
  assert.ok(g.get('src/cli/index.ts')!.includes('src/runtime/rerun.ts'));
  assert.ok(g.get('src/internal.ts')!.includes('src/experiment/index.ts'));
  assert.equal([...new Set(g.get('src/index.ts'))], ['src/internal.ts'], 'the public entry picks its names from the internal one');
  assert.ok(g.size > 50, `${g.size} files`);
});

// a flag inside a string: a quote, then anything but a quote, then --word
const FLAG = /['"`][^'"`\n]*?(?<![-\w])--[a-z][a-z-]+/;

/** the lines of library code (outside src/cli) whose strings name a command-line flag; comments and
 *  the Slurm scripts' own sbatch options (#SBATCH, --parsable, --dependency) aside */
function flagLines(): string[] {
  return files('src').filter((f) => !f.startsWith('src/cli/')).flatMap((f) => readFileSync(join(root, f), 'utf8').split('\n').map((line, i) => ({ f, line, i }))
    .filter(({ line }) => !/^\s*(\/\/|\*|\/\*)/.test(line) && FLAG.test(line) && !/#SBATCH --|'--parsable'/.test(line))
    .map(({ f, i, line }) => `${f}:${i + 1}: ${line.trim().slice(0, 120)}`));
}

L('the library names no command-line flag: an error names the option as {name}, and the command words it', () => {
  assert.equal(flagLines(), []);
  // the check finds a flag where there is one
  assert.ok(FLAG.test("throw new Error('merge: give --ratio');") && FLAG.test('`${what}: --multiple-of needs`') && !FLAG.test("const x = a--b;"));
});

L.run();
