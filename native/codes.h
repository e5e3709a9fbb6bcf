// An 8-bit copy of a graph's rows, for the walk through its bottom layer (native/hnsw.cc).
//
// A search that goes deep (efSearch 64 and up on a graph bigger than the CPU's caches) spends its
// time waiting for rows: each step reads a neighbour's whole float row from somewhere in memory.
// The walk only has to rank neighbours well enough to decide where to go next, so it reads each row
// as 8-bit codes, a quarter of the bytes; the candidates it ends with are scored again on their
// float rows, and those scores are the ones a search answers.
//
// Each row is scaled on its own (its largest value to 127) and rounded: rows come one at a time,
// so there are no statistics over all rows to lean on, and a row's own scale keeps about 7 bits
// for each of its values whatever the embedding model makes of its dimensions. A row's codes are
// padded with zeros to a multiple of 16 values and followed by its scale (a float), so the dot
// product needs no tail loop.
#ifndef MEMEX_CODES_H
#define MEMEX_CODES_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace memex {

// Values in a row's codes: the dimension rounded up to 16.
inline size_t CodeWidth(size_t dim) { return (dim + 15) & ~size_t(15); }

// Bytes a row takes: its codes and its scale.
inline size_t CodeStride(size_t dim) { return CodeWidth(dim) + sizeof(float); }

// Writes `dim` floats as codes (`CodeWidth(dim)` bytes, zero-padded) followed by the scale that
// turns a code back into its value. A row of zeros has scale 0.
inline void Encode(const float* row, size_t dim, int8_t* out) {
  float largest = 0;
  size_t i = 0;
#if defined(__AVX2__)
  // GCC does not vectorise a float max on its own (NaN rules): 8 lanes by hand.
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 lanes = _mm256_setzero_ps();
  for (; i + 8 <= dim; i += 8) lanes = _mm256_max_ps(lanes, _mm256_andnot_ps(sign, _mm256_loadu_ps(row + i)));
  alignas(32) float each[8];
  _mm256_store_ps(each, lanes);
  for (float value : each) largest = std::max(largest, value);
#endif
  for (; i < dim; i++) largest = std::max(largest, std::fabs(row[i]));
  const float scale = largest > 0 ? largest / 127.0f : 0.0f;
  const float inverse = largest > 0 ? 127.0f / largest : 0.0f;
  // Rounded half away from zero; the largest value lands on 127 (a loop the compiler vectorises:
  // lrint's call per value made reading a 1M-row graph take 4 s longer).
  for (i = 0; i < dim; i++) {
    const float value = row[i] * inverse;
    out[i] = static_cast<int8_t>(value + (value < 0 ? -0.5f : 0.5f));
  }
  std::memset(out + dim, 0, CodeWidth(dim) - dim);
  std::memcpy(out + CodeWidth(dim), &scale, sizeof(float));
}

inline float ScaleOf(const int8_t* codes, size_t width) {
  float scale;
  std::memcpy(&scale, codes + width, sizeof(float));
  return scale;
}

// The dot product of two rows' codes; `width` is a multiple of 16.
inline int32_t Dot8(const int8_t* a, const int8_t* b, size_t width) {
#if defined(__AVX512BW__)
  __m512i sum = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 32 <= width; i += 32) {
    const __m512i x = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)));
    const __m512i y = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
    sum = _mm512_add_epi32(sum, _mm512_madd_epi16(x, y));
  }
  if (i < width) {
    const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    sum = _mm512_add_epi32(sum, _mm512_zextsi256_si512(_mm256_madd_epi16(x, y)));
  }
  return _mm512_reduce_add_epi32(sum);
#elif defined(__AVX2__)
  __m256i sum = _mm256_setzero_si256();
  for (size_t i = 0; i < width; i += 16) {
    const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)));
    const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i)));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(x, y));
  }
  __m128i half = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0x4e));
  half = _mm_add_epi32(half, _mm_shuffle_epi32(half, 0xb1));
  return _mm_cvtsi128_si32(half);
#else
  int32_t sum = 0;
  for (size_t i = 0; i < width; i++) sum += int32_t(a[i]) * int32_t(b[i]);
  return sum;
#endif
}

}  // namespace memex

#endif
