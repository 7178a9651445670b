{
  "variables": {
    "nm_cflags": ["-O3", "-std=c++17", "-fno-math-errno", "-Wall", "-Wno-unused-function"]
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-O2", "-O0"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20", "-O2", "-O0"],
    "cflags_cc": ["<@(nm_cflags)"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"]
  },
  "targets": [
    {
      "target_name": "nm_gemm_avx512",
      "type": "static_library",
      "sources": ["native/gemm_avx512.cc", "native/conv_direct_avx512.cc"],
      "conditions": [["target_arch=='x64'", { "cflags_cc": ["-mavx512f", "-mfma"] }]]
    },
    {
      "target_name": "nm_gemm_avx2",
      "type": "static_library",
      "sources": ["native/gemm_avx2.cc", "native/conv_direct_avx2.cc"],
      "conditions": [["target_arch=='x64'", { "cflags_cc": ["-mavx2", "-mfma"] }]]
    },
    {
      "target_name": "neuronmerge",
      "dependencies": ["nm_gemm_avx512", "nm_gemm_avx2"],
      "sources": [
        "native/addon.cc",
        "native/gemm.cc",
        "native/gemm_generic.cc",
        "native/threadpool.cc",
        "native/conv.cc",
        "native/winograd.cc",
        "native/conv_direct_generic.cc",
        "native/elementwise.cc",
        "native/cluster.cc"
      ],
      "ldflags": ["-pthread"]
    }
  ]
}
