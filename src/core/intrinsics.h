#pragma once
// <immintrin.h> for vitqk's AVX-512 kernels. GCC 12's AVX-512 headers fill unused lanes from
// `__m512 __Y = __Y;`, which its own -Wuninitialized then reports wherever a shuffle or a
// reduction is inlined (fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
