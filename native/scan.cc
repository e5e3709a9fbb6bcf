// Exact inner-product search over a float32 matrix: the scan behind Memex's filtered and exact
// vector search (src/index/vector-index.ts exactScan). Built with -O3 -march=native by scripts/build-native.mjs, so
// the dot product (dot.h) runs on the CPU's SIMD unit; at a few hundred dimensions the scan is
// bound by memory bandwidth, not arithmetic.
//
//   topk(matrix: Float32Array, dim: number, query: Float32Array, labels: Uint32Array | null,
//        rows: number, k: number) -> { labels: Uint32Array, scores: Float32Array }  (best first)
//
// With `labels` null, rows 0 .. rows-1 are scanned; otherwise only the rows it names. Every index is
// checked against the matrix's length before the scan: a bad argument is a thrown TypeError or
// RangeError, never a read outside the buffer.
#include <node_api.h>

#include "args.h"
#include "dot.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

namespace {

// A min-heap of the best k (score, label) pairs: the root is the score a row must beat.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }
  void Push(float score, uint32_t label) {
    if (heap_.size() < k_) {
      heap_.emplace_back(score, label);
      std::push_heap(heap_.begin(), heap_.end(), Better);
    } else if (score > heap_.front().first) {
      std::pop_heap(heap_.begin(), heap_.end(), Better);
      heap_.back() = {score, label};
      std::push_heap(heap_.begin(), heap_.end(), Better);
    }
  }
  // Best first; equal scores by label, as the JavaScript scan orders them.
  std::vector<std::pair<float, uint32_t>> Sorted() {
    std::sort(heap_.begin(), heap_.end(), Better);
    return heap_;
  }

 private:
  // "Less" for the heap: the better pair, so the heap's front is the worst kept.
  static bool Better(const std::pair<float, uint32_t>& a, const std::pair<float, uint32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
  size_t k_;
  std::vector<std::pair<float, uint32_t>> heap_;
};

using memex::Fail;
using memex::TypedArray;
using memex::Uint;

napi_value TopKScan(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 6) return Fail(env, "topk takes 6 arguments");
  void* matrixData;
  size_t matrixLength;
  if (!TypedArray(env, argv[0], napi_float32_array, &matrixData, &matrixLength)) return Fail(env, "matrix must be a Float32Array");
  uint32_t dim, rows, k;
  if (!Uint(env, argv[1], &dim) || dim == 0) return Fail(env, "dim must be a positive integer");
  void* queryData;
  size_t queryLength;
  if (!TypedArray(env, argv[2], napi_float32_array, &queryData, &queryLength) || queryLength != dim) return Fail(env, "query must be a Float32Array of dim values");
  if (!Uint(env, argv[4], &rows)) return Fail(env, "rows must be an integer");
  if (!Uint(env, argv[5], &k)) return Fail(env, "k must be an integer");
  const size_t capacity = matrixLength / dim;
  const float* matrix = static_cast<const float*>(matrixData);
  const float* query = static_cast<const float*>(queryData);

  napi_valuetype labelsType;
  napi_typeof(env, argv[3], &labelsType);
  const uint32_t* labels = nullptr;
  size_t count = rows;
  if (labelsType != napi_null && labelsType != napi_undefined) {
    void* labelsData;
    if (!TypedArray(env, argv[3], napi_uint32_array, &labelsData, &count)) return Fail(env, "labels must be a Uint32Array or null");
    labels = static_cast<const uint32_t*>(labelsData);
    for (size_t i = 0; i < count; i++) {
      if (labels[i] >= capacity) return Fail(env, "a label is past the end of the matrix", true);
    }
  } else if (rows > capacity) {
    return Fail(env, "rows is past the end of the matrix", true);
  }

  TopK top(std::min<size_t>(k, count));
  if (k > 0) {
    for (size_t i = 0; i < count; i++) {
      const uint32_t label = labels ? labels[i] : static_cast<uint32_t>(i);
      top.Push(memex_dot(query, matrix + static_cast<size_t>(label) * dim, dim), label);
    }
  }
  const auto best = top.Sorted();

  napi_value labelsBuffer, scoresBuffer, outLabels, outScores, result;
  void* labelsOut;
  void* scoresOut;
  if (napi_create_arraybuffer(env, best.size() * 4, &labelsOut, &labelsBuffer) != napi_ok ||
      napi_create_arraybuffer(env, best.size() * 4, &scoresOut, &scoresBuffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint32_array, best.size(), labelsBuffer, 0, &outLabels) != napi_ok ||
      napi_create_typedarray(env, napi_float32_array, best.size(), scoresBuffer, 0, &outScores) != napi_ok ||
      napi_create_object(env, &result) != napi_ok) {
    return nullptr;
  }
  for (size_t i = 0; i < best.size(); i++) {
    static_cast<uint32_t*>(labelsOut)[i] = best[i].second;
    static_cast<float*>(scoresOut)[i] = best[i].first;
  }
  napi_set_named_property(env, result, "labels", outLabels);
  napi_set_named_property(env, result, "scores", outScores);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "topk", NAPI_AUTO_LENGTH, TopKScan, nullptr, &fn);
  napi_set_named_property(env, exports, "topk", fn);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
