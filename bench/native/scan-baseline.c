/*
 * The baseline for Memex's exact scan (bench/exact.ts): a plain C scan at the memory bandwidth
 * limit. Reads `rows` x `dim` float32 rows and `queries` x `dim` queries from files, and for each
 * query computes every row's inner product (native/dot.h, the kernel Memex's scan uses, at -O3
 * -march=native) and keeps the best k
 * in a small min-heap. Prints the per-query times in ms, one a line, and a checksum of the answers.
 *
 *   scan-baseline <rows.f32> <queries.f32> <rows> <queries> <dim> <k> <rounds>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../native/dot.h"

static float *load(const char *path, size_t count) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(2); }
  float *data = malloc(count * sizeof(float));
  if (!data || fread(data, sizeof(float), count, f) != count) { fprintf(stderr, "short read: %s\n", path); exit(2); }
  fclose(f);
  return data;
}

int main(int argc, char **argv) {
  if (argc != 8) { fprintf(stderr, "usage: scan-baseline rows.f32 queries.f32 rows queries dim k rounds\n"); return 2; }
  size_t rows = strtoul(argv[3], 0, 10), queries = strtoul(argv[4], 0, 10), dim = strtoul(argv[5], 0, 10), k = strtoul(argv[6], 0, 10);
  int rounds = atoi(argv[7]);
  float *matrix = load(argv[1], rows * dim), *query = load(argv[2], queries * dim);
  float *heap = malloc(k * sizeof(float));
  uint32_t *labels = malloc(k * sizeof(uint32_t));
  double checksum = 0;
  for (int round = 0; round < rounds; round++) {
    for (size_t q = 0; q < queries; q++) {
      struct timespec t0, t1;
      clock_gettime(CLOCK_MONOTONIC, &t0);
      size_t size = 0;
      for (size_t r = 0; r < rows; r++) {
        float s = memex_dot(query + q * dim, matrix + r * dim, dim);
        if (size < k) {
          size_t i = size++;
          while (i > 0 && heap[(i - 1) / 2] > s) { heap[i] = heap[(i - 1) / 2]; labels[i] = labels[(i - 1) / 2]; i = (i - 1) / 2; }
          heap[i] = s; labels[i] = (uint32_t)r;
        } else if (s > heap[0]) {
          size_t i = 0;
          for (;;) {
            size_t l = 2 * i + 1, c;
            if (l >= size) break;
            c = l + 1 < size && heap[l + 1] < heap[l] ? l + 1 : l;
            if (heap[c] >= s) break;
            heap[i] = heap[c]; labels[i] = labels[c]; i = c;
          }
          heap[i] = s; labels[i] = (uint32_t)r;
        }
      }
      clock_gettime(CLOCK_MONOTONIC, &t1);
      for (size_t i = 0; i < size; i++) checksum += labels[i];
      printf("%.4f\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    }
  }
  fprintf(stderr, "checksum %.0f\n", checksum);
  return 0;
}
