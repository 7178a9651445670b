// Which algorithm each convolution of LeNet-5 and VGG-16 takes, forward and backward, on every
// instruction set at 1 and 2 threads: printed as a table, checked against the rules of
// choose_conv_algorithm (native/conv.cc) and against the Winograd tile the kernels report.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, chooseConvAlgorithm, inputShape, kernel, lenet5Arch, nativeAddon, nativeLoadError, shapesThrough, specsOf, vgg16Arch } from '../src/internal.js';
import type { Arch, ConvAlgorithmChoice, ConvGeometry, ConvTarget } from '../src/internal.js';
import { needs } from './helpers.js';

const S = suite('conv-choice');
const SN = needs(S, nativeAddon() ? null : `the native addon did not load: ${nativeLoadError()}`);

interface Layer { model: string; index: number; forward: ConvGeometry; inputGrad: ConvGeometry | null }

/** every convolution of the model at batch N: its forward geometry, and the geometry of the
 *  convolution that carries its output gradient back to its input where conv2d's backward takes one
 *  (stride 1, padding below the kernel) */
const built = new Map<string, ReturnType<typeof specsOf>>();
function layersOf(arch: Arch, N: number): Layer[] {
  if (!built.has(arch.model)) built.set(arch.model, specsOf(buildModel(arch, 0)));
  const specs = built.get(arch.model)!;
  const shapes = shapesThrough(specs, inputShape(arch));
  const out: Layer[] = [];
  let input = inputShape(arch), index = 0;
  specs.forEach((l, i) => {
    if (l.op === 'conv') {
      const [C, H, W] = input, [OC, OH, OW] = shapes[i];
      const forward: ConvGeometry = { N, C, H, W, OC, KH: l.kernel, KW: l.kernel, SH: l.stride, SW: l.stride, PH: l.padding, PW: l.padding, OH, OW };
      const back = l.stride === 1 && l.padding <= l.kernel - 1
        ? { N, C: OC, H: OH, W: OW, OC: C, KH: l.kernel, KW: l.kernel, SH: 1, SW: 1, PH: l.kernel - 1 - l.padding, PW: l.kernel - 1 - l.padding, OH: H, OW: W } : null;
      out.push({ model: arch.model, index: index++, forward, inputGrad: back });
    }
    input = shapes[i];
  });
  return out;
}

const show = (c: ConvAlgorithmChoice) => c.forward + (c.forward === 'winograd' ? `/${c.tile}` : c.forward === 'direct' ? `/${c.width}` : '');
const targets: ConvTarget[] = (['avx512', 'avx2', 'generic'] as const).flatMap((isa) => [2, 1].map((threads) => ({ isa, threads, winograd: 'auto' as const })));
const name = (t: ConvTarget) => `${t.isa}/${t.threads}t`;

SN('the choice of every LeNet-5 and VGG-16 convolution, printed; Winograd in the table exactly where winogradTile says', () => {
  const lines: string[] = [];
  for (const arch of [lenet5Arch(), vgg16Arch()]) {
    for (const N of [128, 1]) {
      for (const l of layersOf(arch, N)) {
        const g = l.forward;
        const cells = targets.map((t) => `${name(t)} ${show(chooseConvAlgorithm(g, t))}`);
        lines.push(`${l.model} conv${l.index + 1} ${g.C}->${g.OC} ${g.OH}x${g.OW} N=${N}: ${cells.join(', ')}; weight gradient ${chooseConvAlgorithm(g).weightGrad}${l.inputGrad ? `; input gradient ${show(chooseConvAlgorithm(l.inputGrad))}` : ''}`);
        // on the machine's own target the two views agree: the tile the kernels report is the
        // choice's, 0 where the choice is not Winograd
        for (const geo of [g, l.inputGrad].filter((x): x is ConvGeometry => x !== null)) {
          const c = chooseConvAlgorithm(geo);
          assert.is(kernel('winogradTile', 'float32')(geo), c.forward === 'winograd' ? c.tile : 0, `${l.model} conv${l.index + 1} N=${N}: winogradTile against ${show(c)}`);
          assert.is(c.weightGrad === 'winograd' ? c.weightGradTile > 0 : c.weightGradTile === 0, true, 'weight-gradient tile only for Winograd');
        }
      }
    }
  }
  console.log(lines.map((s) => `    ${s}`).join('\n'));
  assert.is(lines.length, 2 * (2 + 13), 'LeNet-5 has 2 convolutions, VGG-16 13, at two batch sizes');
});

SN('the rules as documented: first layers direct, wide 3x3 layers Winograd, C * OC = 4096 direct where rows are 16-float vectors, few pixels packed or by rows', () => {
  const at = (arch: Arch, N: number, i: number) => layersOf(arch, N)[i].forward;
  const vgg = vgg16Arch(), lenet = lenet5Arch();
  const t = (isa: 'avx512' | 'avx2' | 'generic', extra: ConvTarget = {}): ConvTarget => ({ isa, threads: 2, winograd: 'auto', ...extra });
  // VGG-16's first layer (3 -> 64, 27 taps) and LeNet-5's (1 -> 20, 25 taps): the direct kernel at the
  // instruction set's vector width
  for (const [isa, width] of [['avx512', 16], ['avx2', 8], ['generic', 4]] as const) {
    assert.equal(show(chooseConvAlgorithm(at(vgg, 128, 0), t(isa))), `direct/${width}`, `VGG-16 conv1 ${isa}`);
    assert.equal(chooseConvAlgorithm(at(lenet, 128, 0), t(isa)).forward, 'direct', `LeNet-5 conv1 ${isa}`);
  }
  // 64 -> 64 at 32x32: the direct kernel in 16-float rows on AVX-512, Winograd's F(4x4) elsewhere
  assert.is(show(chooseConvAlgorithm(at(vgg, 128, 1), t('avx512'))), 'direct/16');
  assert.is(show(chooseConvAlgorithm(at(vgg, 128, 1), t('avx2'))), 'winograd/4');
  // 512 -> 512 at 4x4 and 2x2, batch 128: Winograd F(4x4) and F(2x2) on every instruction set
  for (const isa of ['avx512', 'avx2', 'generic'] as const) {
    assert.is(show(chooseConvAlgorithm(at(vgg, 128, 10), t(isa))), 'winograd/2', `conv11 (2x2) ${isa}`);
    assert.is(show(chooseConvAlgorithm(at(vgg, 128, 7), t(isa))), 'winograd/4', `conv8 (4x4) ${isa}`);
  }
  // LeNet-5's conv2 (20 -> 50, 8x8 outputs): kernel-column copies on AVX-512 (rows of 8, not 16-float
  // vectors), the direct kernel in 8-float vectors on AVX2
  assert.is(chooseConvAlgorithm(at(lenet, 128, 1), t('avx512')).forward, 'narrow-copies');
  assert.is(show(chooseConvAlgorithm(at(lenet, 128, 1), t('avx2'))), 'direct/8');
  // one image on 2x2 maps: packed weights where a session laid them out, else rows of the transposed
  // im2col matrix; 4x4 maps (16 pixels) packed, else the narrow GEMM
  assert.is(chooseConvAlgorithm(at(vgg, 1, 10), t('avx2', { packed: true })).forward, 'packed');
  assert.is(chooseConvAlgorithm(at(vgg, 1, 10), t('avx2')).forward, 'dot');
  assert.is(chooseConvAlgorithm(at(vgg, 1, 7), t('avx2')).forward, 'narrow-gemm');
  // Winograd off: never; on: every 3x3 stride-1 layer at batch 128
  for (const l of layersOf(vgg, 128)) {
    assert.is.not(chooseConvAlgorithm(l.forward, t('avx2', { winograd: 'off' })).forward, 'winograd');
    assert.is(chooseConvAlgorithm(l.forward, t('avx2', { winograd: 'on' })).forward, 'winograd', `conv${l.index + 1} with Winograd on`);
  }
  // the TypeScript backend: always im2col and a GEMM
  assert.is(chooseConvAlgorithm(at(vgg, 128, 1), {}, 'float64').forward, 'im2col-gemm');
});

SN('a bad target or geometry names the field at fault', () => {
  const g: ConvGeometry = { N: 1, C: 3, H: 8, W: 8, OC: 4, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 8, OW: 8 };
  assert.throws(() => chooseConvAlgorithm(g, { isa: 'sse' as 'avx2' }), /convAlgorithm: target.isa must be 'avx512', 'avx2' or 'generic'/);
  assert.throws(() => chooseConvAlgorithm(g, { threads: 0 }), /convAlgorithm: target.threads must be an integer in \[1, 1024\], got 0/);
  assert.throws(() => chooseConvAlgorithm({ ...g, KH: 0 }), /convAlgorithm: geometry.KH must be an integer in \[1, /);
  assert.throws(() => chooseConvAlgorithm({ ...g, OH: 9 }), /convAlgorithm: geometry's OH x OW 9x8 is larger than the input 8x8, padding 1,1 and kernel 3x3 give/);
  assert.throws(() => chooseConvAlgorithm({ ...g, N: undefined as unknown as number }), /convAlgorithm: geometry.N must be an integer in \[1, \d+\], got none/);
});

S.run();
