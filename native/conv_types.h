// The objects every convolution kernel takes: its geometry, its epilogue, the weights an inference
// session prepared ahead, the machine a choice is made for, and the algorithm chosen. The N-API
// bindings build them from the JavaScript objects of the same names (src/backend/types.ts).
#pragma once
#include <cstdint>

namespace nm {

enum class Isa;  // gemm.h

/** N images of C x H x W through OC kernels of KH x KW at stride SH, SW and zero padding PH, PW:
 *  outputs of OH x OW (at most what the padded input holds) */
struct ConvGeometry {
  int N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW;
  int64_t pixels() const { return static_cast<int64_t>(OH) * OW; }  // output pixels an image
  int taps() const { return C * KH * KW; }                          // weights an output channel
  int64_t image() const { return static_cast<int64_t>(C) * H * W; }  // input floats an image
  bool unit_stride() const { return SH == 1 && SW == 1; }
};

/** per output channel c after the products: y = scale[c] * x + shift[c] (null: 1 and 0), then
 *  max(y, 0) where relu, then where pool = 2 the maximum of each 2x2 window (stride 2, floor) */
struct ConvEpilogue {
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool relu = false;
  int pool = 1;
  bool plain() const { return !scale && !shift && !relu && pool == 1; }
};

/** weights laid out once by an inference session: packed by pack_weights for vector width
 *  packed_width, transformed by winograd_weights for F(tile x tile, 3 x 3) at winograd_width. Each is
 *  read only where the call takes that path and its width is the kernels' now. */
struct PreparedConvWeights {
  const float* packed = nullptr;
  int packed_width = 0;
  const float* winograd = nullptr;
  int winograd_tile = 0;
  int winograd_width = 0;
};

/** what a choice of algorithm depends on besides the geometry: the micro-kernels' instruction set, the
 *  threads, and Winograd's mode (-1 by shape, 0 never, 1 wherever the geometry allows) */
struct ConvTarget {
  Isa isa;
  int threads;
  int winograd;
  /** the one in effect now (gemm_isa(), num_threads(), winograd_mode()) */
  static ConvTarget now();
  int vector_floats() const;  // floats a vector of isa's kernels
  bool avx2_loops() const;  // the AVX2 builds of the vector loops may run (see use_avx2_loops)
};

enum class ConvAlgorithm {
  Packed,        // im2col, then the weights packed ahead (packed_kernel.h): few pixels in all
  NarrowCopies,  // kernel-column copies of each image and the narrow kernel (narrow_conv_rows)
  Direct,        // the direct convolution (conv_direct_kernel.h), `width` floats a vector
  Winograd,      // Winograd's F(tile x tile, 3 x 3) (winograd.cc)
  Dot,           // the im2col matrix transposed times the weights by rows: at most 4 pixels in all
  NarrowGemm,    // im2col, then sgemm_narrow reading the weights where they lie
  GemmPerImage,  // the implicit-im2col GEMM, one large image at a time straight into the output
  Im2colGemm,    // an im2col matrix of at most 16 MB of images, then the plain GEMM
  ImplicitGemm,  // the implicit-im2col GEMM over images side by side, then the epilogue
};
const char* conv_algorithm_name(ConvAlgorithm a);

struct ConvChoice {
  ConvAlgorithm algorithm;
  int tile = 0;   // Winograd's m
  int width = 0;  // the direct convolution's vector width in floats
};

/** the forward algorithm conv_forward takes for this geometry and pooling on this target, with
 *  weights packed ahead at the target's width or not */
ConvChoice choose_conv_algorithm(const ConvGeometry& g, int pool, bool packed, const ConvTarget& t);

enum class WeightGradAlgorithm { Winograd, Direct, Im2colGemm };
struct WeightGradChoice {
  WeightGradAlgorithm algorithm;
  int tile = 0;
};
/** how a convolution's weight gradient is computed: Winograd's transforms, the direct kernel, or (by
 *  the caller) im2col and a GEMM */
WeightGradChoice choose_weight_grad_algorithm(const ConvGeometry& g, const ConvTarget& t);

}  // namespace nm
