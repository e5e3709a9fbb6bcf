// The inner product at the heart of the exact scan (native/scan.cc) and of its C baseline
// (bench/native/scan-baseline.c): four independent 8-lane sums, written with the GCC/Clang vector
// extension so the compiler emits SIMD multiply-adds whatever it makes of the loops around it.
// (A plain loop under `#pragma omp simd` ran 3x slower once inlined into a scan loop: GCC 12
// vectorised the wrong loop.)
#ifndef MEMEX_DOT_H
#define MEMEX_DOT_H

#include <stddef.h>
#include <string.h>

typedef float memex_v8 __attribute__((vector_size(32)));

static inline float memex_dot(const float *a, const float *b, size_t n) {
  memex_v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    memex_v8 a0, a1, a2, a3, b0, b1, b2, b3;
    memcpy(&a0, a + i, 32);
    memcpy(&a1, a + i + 8, 32);
    memcpy(&a2, a + i + 16, 32);
    memcpy(&a3, a + i + 24, 32);
    memcpy(&b0, b + i, 32);
    memcpy(&b1, b + i + 8, 32);
    memcpy(&b2, b + i + 16, 32);
    memcpy(&b3, b + i + 24, 32);
    s0 += a0 * b0;
    s1 += a1 * b1;
    s2 += a2 * b2;
    s3 += a3 * b3;
  }
  memex_v8 s = (s0 + s1) + (s2 + s3);
  float sum = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

#endif
