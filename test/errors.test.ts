// Bad input gives an Error that names the op and the shapes, never a silent NaN or a wrong-sized result.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  add, avgPool2d, batchNorm, cat, conv2d, crossEntropy, dropout, matmul, max, maxPool2d, mean, mul, normal, ones, permute,
  reshape, Rng, slice, softmax, sum, take, tensor, Tensor, transpose, zeros, setBackend, clamp, uniform,
} from '../src/internal.js';
import { assertThrows } from './helpers.js';

const E = suite('errors');

E('non-broadcastable shapes name the op and both shapes', () => {
  assertThrows(() => add(zeros([2, 3]), zeros([4])), /add: shapes \[2,3\] and \[4\] are not broadcastable/);
  assertThrows(() => mul(zeros([2, 3, 4]), zeros([3, 3, 4])), /mul: shapes \[2,3,4\] and \[3,3,4\]/);
});

E('matmul with mismatched inner dimensions or too few dimensions', () => {
  assertThrows(() => matmul(zeros([2, 3]), zeros([4, 5])), /matmul: inner dimensions differ, shapes \[2,3\] and \[4,5\]/);
  assertThrows(() => matmul(zeros([3]), zeros([3, 2])), /matmul: .*at least 2 dimensions.*\[3\]/);
  assertThrows(() => matmul(zeros([2, 2, 3]), zeros([3, 3, 2])), /matmul: shapes \[2\] and \[3\] are not broadcastable/);
});

E('backward from a non-scalar, or with a gradient of the wrong shape', () => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  assertThrows(() => mul(x, 2).backward(), /backward: called on a tensor of shape \[3\]/);
  assertThrows(() => mul(x, 2).backward(zeros([2])), /backward: gradient of shape \[2\] does not match tensor of shape \[3\]/);
  assertThrows(() => sum(tensor([1, 2])).backward(), /does not require grad/);
});

E('wrong-length data, ragged arrays, invalid shapes', () => {
  assertThrows(() => tensor([1, 2, 3, 4, 5], [2, 3]), /tensor: data has 5 elements but shape \[2,3\] needs 6/);
  assertThrows(() => tensor(new Float32Array(5), [2, 2]), /tensor: data has 5 elements but shape \[2,2\] needs 4/);
  assertThrows(() => new Tensor(new Float32Array(3), [2, 2]), /Tensor: data has 3 elements but shape \[2,2\] needs 4/);
  assertThrows(() => tensor([[1, 2], [3]]), /tensor: ragged nested array/);
  assertThrows(() => tensor([1, 'a' as unknown as number]), /tensor: element at \[1\] is string/);
  assertThrows(() => zeros([2, -1]), /zeros: shape \[2,-1\] has an invalid dimension -1/);
  assertThrows(() => ones([2.5]), /full: shape \[2.5\] has an invalid dimension/);
});

E('reshape, permute, transpose, slice, take, cat with bad arguments', () => {
  assertThrows(() => reshape(zeros([2, 3]), [4, 2]), /reshape: cannot reshape \[2,3\] \(6 elements\) to \[4,2\]/);
  assertThrows(() => reshape(zeros([2, 3]), [-1, 4]), /reshape: cannot reshape \[2,3\]/);
  assertThrows(() => reshape(zeros([2, 3]), [-1, -1]), /more than one -1/);
  assertThrows(() => permute(zeros([2, 3]), [0, 0]), /permute: \[0,0\] is not a permutation/);
  assertThrows(() => permute(zeros([2, 3]), [0]), /permute: permutation \[0\] does not match shape \[2,3\]/);
  assertThrows(() => transpose(zeros([3])), /transpose: needs at least 2 dimensions, got shape \[3\]/);
  assertThrows(() => slice(zeros([4, 2]), 3, 6), /slice: range \[3, 6\) is out of bounds for the first axis of shape \[4,2\]/);
  assertThrows(() => take(zeros([4, 2]), [0, 4]), /take: index 4 at position 1 is out of range .*\[4,2\]/);
  assertThrows(() => cat([zeros([2, 3]), zeros([2, 4])], 0), /cat: shapes \[2,3\], \[2,4\] differ outside axis 0/);
  assertThrows(() => cat([], 0), /cat: needs a non-empty array/);
});

E('reductions and softmax with out-of-range or repeated axes', () => {
  assertThrows(() => sum(zeros([2, 3]), 2), /sum: axis 2 is out of range for shape \[2,3\]/);
  assertThrows(() => mean(zeros([2, 3]), [0, -2]), /mean: repeated axis/);
  assertThrows(() => max(zeros([0, 3]), 0), /max: reducing over an empty axis of shape \[0,3\]/);
  assertThrows(() => softmax(zeros([2, 3]), -3), /softmax: axis -3 is out of range for shape \[2,3\]/);
});

E('conv2d and pooling with mismatched channels, bad kernels, stride or padding', () => {
  assertThrows(() => conv2d(zeros([1, 3, 5, 5]), zeros([2, 4, 3, 3])), /conv2d: input \[1,3,5,5\] has 3 channels but weight \[2,4,3,3\] expects 4/);
  assertThrows(() => conv2d(zeros([3, 5, 5]), zeros([2, 3, 3, 3])), /conv2d: input must be \(N,C,H,W\), got shape \[3,5,5\]/);
  assertThrows(() => conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3])), /conv2d: kernel 3x3 does not fit input \[1,1,2,2\]/);
  assertThrows(() => conv2d(zeros([1, 1, 5, 5]), zeros([2, 1, 3, 3]), zeros([3])), /conv2d: bias must have shape \[2\], got \[3\]/);
  assertThrows(() => conv2d(zeros([1, 1, 5, 5]), zeros([1, 1, 3, 3]), null, { stride: 0 }), /conv2d: stride must be an integer >= 1/);
  assertThrows(() => maxPool2d(zeros([1, 1, 4, 4]), 2, { padding: 2 }), /maxPool2d: padding 2,2 must be at most half the kernel 2x2/);
  assertThrows(() => avgPool2d(zeros([1, 1, 2, 2]), 3), /avgPool2d: kernel 3x3 does not fit input \[1,1,2,2\]/);
});

E('cross-entropy with bad targets', () => {
  assertThrows(() => crossEntropy(zeros([2, 3]), [0, 3]), /crossEntropy: target 3 at position 1 is not a class index in \[0, 3\)/);
  assertThrows(() => crossEntropy(zeros([2, 3]), [0]), /crossEntropy: 1 targets for a batch of 2/);
  assertThrows(() => crossEntropy(zeros([2, 3]), [0, 1.5]), /target 1.5/);
  assertThrows(() => crossEntropy(zeros([6]), [0]), /crossEntropy: logits must be \(N,C\), got shape \[6\]/);
});

E('batch norm with wrong parameter shapes or a single value per channel', () => {
  const st = { runningMean: zeros([3]), runningVar: ones([3]) };
  assertThrows(() => batchNorm(zeros([4, 3]), ones([2]), zeros([3]), st, true), /batchNorm: gamma must have shape \[3\] for input \[4,3\], got \[2\]/);
  assertThrows(() => batchNorm(zeros([1, 3]), ones([3]), zeros([3]), st, true), /more than one value per channel/);
});

E('mixed dtypes, dropout p, clamp bounds, generators', () => {
  assertThrows(() => add(zeros([2]), zeros([2], { dtype: 'float64' })), /add: dtype mismatch, float32 \[2\] and float64 \[2\]/);
  assertThrows(() => dropout(zeros([2]), 1, true, new Rng(1)), /dropout: p must be in \[0, 1\), got 1/);
  assertThrows(() => clamp(zeros([2]), 1, 0), /clamp: min 1 is greater than max 0/);
  assertThrows(() => uniform([2], 0, 1, undefined as unknown as Rng), /uniform: rng must be an Rng/);
  assertThrows(() => normal([2], 0, 1, {} as Rng), /normal: rng must be an Rng/);
  assertThrows(() => new Rng(1).int(0), /Rng.int: n must be an integer/);
  assertThrows(() => zeros([2]).item(), /item: tensor of shape \[2\] has 2 elements, not 1/);
  assertThrows(() => setBackend('nosuch'), /setBackend: no backend named 'nosuch' \(registered: js/);
});

E('no op returns a wrong-sized result: output sizes match their shapes', () => {
  const outs = [add(zeros([2, 1]), zeros([3])), matmul(zeros([2, 3]), zeros([3, 4])), sum(zeros([2, 3]), 1, true), conv2d(zeros([1, 1, 4, 4]), zeros([2, 1, 3, 3]), null, { padding: 1 })];
  for (const t of outs) assert.is(t.data.length, t.shape.reduce((p, d) => p * d, 1));
  assert.equal(outs[0].shape, [2, 3]);
  assert.equal(outs[3].shape, [1, 2, 4, 4]);
});

E.run();
