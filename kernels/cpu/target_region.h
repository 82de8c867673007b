#pragma once
// Compiling a region of a file for an instruction-set extension, with GCC and clang alike:
//   TESSERA_TARGET_REGION_BEGIN("avx2,fma,f16c")  ... functions ...  TESSERA_TARGET_REGION_END()
// GCC applies `#pragma GCC target` to every function that follows; clang ignores that pragma and needs
// `#pragma clang attribute` instead. Only functions declared inside the region get the target, so library
// templates instantiated elsewhere stay baseline code (no wide instructions leak into shared inline functions).
// Callers must check the CPU at run time before calling into the region.
#define TESSERA_PRAGMA(text) _Pragma(#text)
#if defined(__clang__)
#define TESSERA_TARGET_REGION_BEGIN(features) \
  TESSERA_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define TESSERA_TARGET_REGION_END() TESSERA_PRAGMA(clang attribute pop)
#else
#define TESSERA_TARGET_REGION_BEGIN(features) TESSERA_PRAGMA(GCC push_options) TESSERA_PRAGMA(GCC target(features))
#define TESSERA_TARGET_REGION_END() TESSERA_PRAGMA(GCC pop_options)
#endif
