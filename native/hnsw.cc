// Memex's HNSW graph: hnswlib-node's own hnswlib (the same headers, compiled with -O3 -march=native
// by scripts/build-native.mjs), called the way Memex needs, in inner-product space. The files it
// writes and reads are hnswlib's, so hnswlib-node reads what it writes and the other way round.
//
// What it adds over hnswlib-node:
// - `add` adds a batch of rows on several threads at once. hnswlib-node adds one row at a time on
//   the calling thread; hnswlib itself lets many threads call addPoint on one graph (its locks guard
//   each node's links and the entry point; its Python binding builds this way). With one thread the
//   graph is the one hnswlib-node builds from the same rows in the same order and seed.
// - `search` takes the query as a Float32Array and answers typed arrays. hnswlib-node reads a
//   query element by element from a JavaScript array and answers arrays of numbers: at 384-d that
//   took longer than searching a small graph.
// - The search walks the bottom layer on an 8-bit copy of the rows (native/codes.h, a quarter of
//   the bytes to read at each step, +25% memory at 384-d) and scores the efSearch rows it ends with
//   again on their float rows: the distances it answers are the float rows' own. The copy is made
//   as rows are added and when a graph is read; files stay hnswlib's.
//
//   create(dim, capacity, m, efConstruction, seed) -> graph      read(path, dim) -> graph
//   add(graph, labels: Uint32Array, vectors: Float32Array, threads)    write(graph, path)
//   search(graph, query: Float32Array, k, accept: ((label) => boolean) | null)
//     -> { labels: Uint32Array, distances: Float32Array }  nearest first; distance = 1 - dot
//   setEf(graph, ef)   markDelete(graph, label)   resize(graph, capacity)
//   point(graph, label) -> Float32Array   count(graph)   capacity(graph)   dim(graph)
//
// Labels given to `add` must be new (Memex checks; hnswlib would overwrite). A bad argument is a
// thrown TypeError or RangeError; a failure inside hnswlib (out of memory, a corrupt file) a thrown
// Error with code MEMEX_HNSW.
#include <node_api.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "args.h"
#include "codes.h"
#include "hnswlib/hnswlib.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

// The 2 MB-aligned middle of the graph's bottom layer (its rows and their links, one block), or an
// empty range when it has none.
std::pair<char*, size_t> HugeRange(const hnswlib::HierarchicalNSW<float>& index) {
  const uintptr_t huge = uintptr_t(2) << 20;
  const uintptr_t start = reinterpret_cast<uintptr_t>(index.data_level0_memory_);
  const uintptr_t begin = (start + huge - 1) & ~(huge - 1);
  const uintptr_t end = (start + index.max_elements_ * index.size_data_per_element_) & ~(huge - 1);
  return end > begin ? std::make_pair(reinterpret_cast<char*>(begin), size_t(end - begin)) : std::make_pair(nullptr, size_t(0));
}

// Asks the kernel to back the bottom layer with 2 MB pages (transparent huge pages, where the
// system allows them: Linux's default `madvise` mode). A search reads a few rows from all over the
// layer, and with 4 KB pages nearly every one of them also misses the TLB: at 1M x 384 (1.6 GB)
// huge pages answered 1.2x the queries. Memory not yet touched gets them as it is written; memory
// already written (a graph read from its file) is rebuilt into them by `collapse`, which takes
// 2-4 ms a MB and so runs in a thread of its own while the graph answers. Where the system
// says no, nothing changes.
void AdviseHuge(const hnswlib::HierarchicalNSW<float>& index) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto [begin, bytes] = HugeRange(index);
  if (bytes > 0) madvise(begin, bytes, MADV_HUGEPAGE);
#else
  (void)index;
#endif
}

#if defined(__linux__) && !defined(MADV_COLLAPSE)
#define MADV_COLLAPSE 25
#endif

// The graph's rows as 8-bit codes (native/codes.h), by internal id, in memory of their own advised
// into 2 MB pages like the bottom layer.
class CodeRows {
 public:
  explicit CodeRows(size_t dim) : width_(memex::CodeWidth(dim)), stride_(memex::CodeStride(dim)) {}
  ~CodeRows() { std::free(data_); }
  CodeRows(const CodeRows&) = delete;
  CodeRows& operator=(const CodeRows&) = delete;
  // Room for `rows` rows, keeping those written; `advise` asks for 2 MB pages as they are first
  // written (where the kernel then compacts memory to find them: reading a 1M-row graph took 2.6 s
  // longer, so a graph read from its file collapses its codes later, in its own thread).
  void reserve(size_t rows, bool advise = true) {
    const size_t huge = size_t(2) << 20;
    const size_t bytes = (rows * stride_ + huge - 1) & ~(huge - 1);
    if (bytes <= bytes_) return;
    void* grown = std::aligned_alloc(huge, bytes);
    if (!grown) throw std::runtime_error("Not enough memory for the graph's 8-bit rows");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (advise) madvise(grown, bytes, MADV_HUGEPAGE);
#else
    (void)advise;
#endif
    if (data_) std::memcpy(grown, data_, bytes_);
    std::free(data_);
    data_ = static_cast<int8_t*>(grown);
    bytes_ = bytes;
  }
  int8_t* row(size_t id) const { return data_ + id * stride_; }
  std::pair<char*, size_t> memory() const { return {reinterpret_cast<char*>(data_), bytes_}; }
  size_t width() const { return width_; }
  size_t stride() const { return stride_; }

 private:
  size_t width_, stride_;
  int8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

using Found = std::vector<std::pair<float, hnswlib::labeltype>>;

// Asks memory for every cache line of `bytes` bytes at `data`, ahead of reading them.
inline void Prefetch(const void* data, size_t bytes) {
  for (size_t at = 0; at < bytes; at += 64) __builtin_prefetch(static_cast<const char*>(data) + at);
}

struct Graph {
  Graph(size_t dim, size_t capacity, size_t m, size_t ef, size_t seed)
      : space(dim), index(&space, capacity, m, ef, seed), dim(dim), codes(dim) {
    AdviseHuge(index);
    codes.reserve(capacity);
  }
  Graph(size_t dim, const std::string& path) : space(dim), index(&space, path, false, 0, false), dim(dim), codes(dim) {
    codes.reserve(index.max_elements_, false);
    encode(0, index.cur_element_count);
#ifdef __linux__
    AdviseHuge(index);
    // The bottom layer, then the codes, a step at a time (64 MB, about 0.1 s), so a graph dropped
    // or grown meanwhile waits for one step only: a one-shot command that read a large graph does
    // not wait for all of it at exit.
    const std::pair<char*, size_t> ranges[] = {HugeRange(index), codes.memory()};
    collapse = std::thread([this, ranges]() {
      const size_t step = size_t(64) << 20;
      for (const auto& [begin, bytes] : ranges) {
        if (bytes > 0 && !stop.load()) madvise(begin, bytes, MADV_HUGEPAGE);
        for (size_t at = 0; at < bytes && !stop.load(); at += step) madvise(begin + at, std::min(step, bytes - at), MADV_COLLAPSE);
      }
    });
#endif
  }
  ~Graph() { settle(); }
  // Before the bottom layer moves (a resize) or goes, the collapse of its old place stops.
  void settle() {
    stop.store(true);
    if (collapse.joinable()) collapse.join();
  }
  // Room for `capacity` rows; the grown layer is advised into huge pages too.
  void grow(size_t capacity) {
    settle();
    index.resizeIndex(capacity);
    AdviseHuge(index);
    codes.reserve(capacity);
  }
  // The 8-bit codes of the rows with internal ids [from, to), from their float rows.
  void encode(size_t from, size_t to) {
    for (size_t id = from; id < to; id++) memex::Encode(reinterpret_cast<const float*>(index.getDataByInternalId(id)), dim, codes.row(id));
  }
  Found search(const float* query, size_t k, hnswlib::BaseFilterFunctor* accept) const;

  hnswlib::InnerProductSpace space;
  hnswlib::HierarchicalNSW<float> index;
  size_t dim;
  CodeRows codes;
  std::atomic<bool> stop{false};
  std::thread collapse;
};

// The k nearest rows that are not deleted and that `accept` takes, nearest first, distance 1 - dot.
// hnswlib's search (searchKnn) with one change: the walk through the bottom layer ranks rows by
// their 8-bit codes, and the efSearch candidates it ends with are ranked again on their float rows.
Found Graph::search(const float* query, size_t k, hnswlib::BaseFilterFunctor* accept) const {
  using hnswlib::tableint;
  const auto& ix = index;
  if (ix.cur_element_count == 0) return {};
  auto exact = [&](tableint id) { return ix.fstdistfunc_(query, ix.getDataByInternalId(id), ix.dist_func_param_); };

  // Down the upper layers on the float rows, greedily: a few rows a layer.
  tableint entry = ix.enterpoint_node_;
  float entryDistance = exact(entry);
  for (int level = ix.maxlevel_; level > 0; level--) {
    for (bool changed = true; changed;) {
      changed = false;
      unsigned int* links = ix.get_linklist(entry, level);
      const tableint* neighbours = links + 1;
      for (int i = 0, n = ix.getListCount(links); i < n; i++) {
        const float d = exact(neighbours[i]);
        if (d < entryDistance) {
          entryDistance = d;
          entry = neighbours[i];
          changed = true;
        }
      }
    }
  }

  // The bottom layer on the codes.
  const size_t width = codes.width();
  std::vector<int8_t> q(codes.stride());
  memex::Encode(query, dim, q.data());
  const float queryScale = memex::ScaleOf(q.data(), width);
  auto approximate = [&](tableint id) {
    const int8_t* row = codes.row(id);
    return 1.0f - queryScale * memex::ScaleOf(row, width) * static_cast<float>(memex::Dot8(q.data(), row, width));
  };
  const bool everyRow = ix.num_deleted_ == 0 && accept == nullptr;
  auto allowed = [&](tableint id) { return everyRow || (!ix.isMarkedDeleted(id) && (!accept || (*accept)(ix.getExternalLabel(id)))); };
  const size_t ef = std::max(ix.ef_, k);

  std::vector<tableint> fresh(ix.maxM0_);
  hnswlib::VisitedList* visitedList = ix.visited_list_pool_->getFreeVisitedList();
  hnswlib::vl_type* visited = visitedList->mass;
  const hnswlib::vl_type tag = visitedList->curV;
  using Pair = std::pair<float, tableint>;
  using ByFirst = hnswlib::HierarchicalNSW<float>::CompareByFirst;
  std::priority_queue<Pair, std::vector<Pair>, ByFirst> best;        // farthest on top, at most ef
  std::priority_queue<Pair, std::vector<Pair>, ByFirst> candidates;  // nearest on top (negated)
  float bound = std::numeric_limits<float>::max();
  {
    const float d = approximate(entry);
    if (allowed(entry)) {
      best.emplace(d, entry);
      bound = d;
    }
    candidates.emplace(-d, entry);
  }
  visited[entry] = tag;
  while (!candidates.empty()) {
    const auto [negated, current] = candidates.top();
    if (-negated > bound && best.size() == ef) break;
    candidates.pop();
    unsigned int* list = ix.get_linklist0(current);
    const size_t n = ix.getListCount(list);
    // The neighbours not seen yet, their codes asked for from memory before any is scored.
    size_t count = 0;
    for (size_t j = 1; j <= n && count < fresh.size(); j++) {
      const tableint id = list[j];
      if (visited[id] == tag) continue;
      visited[id] = tag;
      fresh[count++] = id;
      __builtin_prefetch(codes.row(id));
    }
    for (size_t i = 0; i < count; i++) {
      if (i + 1 < count) Prefetch(codes.row(fresh[i + 1]), codes.stride());
      const tableint id = fresh[i];
      const float d = approximate(id);
      if (best.size() < ef || d < bound) {
        candidates.emplace(-d, id);
        if (allowed(id)) best.emplace(d, id);
        while (best.size() > ef) best.pop();
        if (!best.empty()) bound = best.top().first;
      }
    }
  }
  ix.visited_list_pool_->releaseVisitedList(visitedList);

  // The candidates on their float rows.
  Found found;
  found.reserve(best.size());
  for (; !best.empty(); best.pop()) found.emplace_back(0.0f, best.top().second);
  // Each row is asked for from memory a few rows ahead of its turn.
  const size_t ahead = 4;
  auto fetch = [&](size_t i) {
    if (i < found.size()) Prefetch(ix.getDataByInternalId(static_cast<tableint>(found[i].second)), dim * sizeof(float));
  };
  for (size_t i = 0; i < ahead; i++) fetch(i);
  for (size_t i = 0; i < found.size(); i++) {
    fetch(i + ahead);
    found[i].first = exact(static_cast<tableint>(found[i].second));
  }
  const size_t keep = std::min(k, found.size());
  std::partial_sort(found.begin(), found.begin() + keep, found.end());
  found.resize(keep);
  for (auto& [distance, id] : found) id = ix.getExternalLabel(static_cast<tableint>(id));
  return found;
}

using memex::Args;
using memex::Fail;
using memex::TypedArray;
using memex::Uint;

napi_value Error(napi_env env, const std::string& message) {
  napi_throw_error(env, "MEMEX_HNSW", message.c_str());
  return nullptr;
}

bool String(napi_env env, napi_value value, std::string* out) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) return false;
  out->assign(length, '\0');
  return napi_get_value_string_utf8(env, value, &(*out)[0], length + 1, &length) == napi_ok;
}

// Every graph handed out carries this tag, so an external made by another addon is refused
// instead of being read as a graph.
const napi_type_tag kGraphTag = {0x6d656d6578686e73ULL, 0x77677261706801ULL};

napi_value Wrap(napi_env env, Graph* graph) {
  napi_value handle;
  auto finalize = [](napi_env, void* data, void*) { delete static_cast<Graph*>(data); };
  if (napi_create_external(env, graph, finalize, nullptr, &handle) != napi_ok) {
    delete graph;
    return nullptr;
  }
  if (napi_type_tag_object(env, handle, &kGraphTag) != napi_ok) return nullptr;
  return handle;
}

// A call on a graph: its N arguments, the first a graph this addon made. Null, with a TypeError
// thrown, when they are not.
template <size_t N>
Graph* GraphCall(napi_env env, napi_callback_info info, napi_value (&argv)[N], const char* name) {
  if (!Args(env, info, argv)) {
    const std::string message = std::string(name) + " takes " + std::to_string(N) + " argument" + (N == 1 ? "" : "s");
    Fail(env, message.c_str());
    return nullptr;
  }
  napi_valuetype type;
  bool tagged = false;
  void* data = nullptr;
  if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external || napi_check_object_type_tag(env, argv[0], &kGraphTag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &data) != napi_ok) {
    Fail(env, "not a graph");
    return nullptr;
  }
  return static_cast<Graph*>(data);
}

napi_value Create(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!Args(env, info, argv)) return Fail(env, "create takes 5 arguments");
  uint32_t dim, capacity, m, ef, seed;
  if (!Uint(env, argv[0], &dim) || dim == 0) return Fail(env, "dim must be a positive integer");
  if (!Uint(env, argv[1], &capacity) || capacity == 0) return Fail(env, "capacity must be a positive integer");
  if (!Uint(env, argv[2], &m) || m < 2 || m > 10000) return Fail(env, "m must be an integer from 2 to 10000", true);
  if (!Uint(env, argv[3], &ef) || ef == 0) return Fail(env, "efConstruction must be a positive integer");
  if (!Uint(env, argv[4], &seed)) return Fail(env, "seed must be an integer");
  Graph* graph = nullptr;
  try {
    graph = new Graph(dim, capacity, m, ef, seed);
  } catch (const std::exception& error) {
    return Error(env, std::string("cannot make the graph: ") + error.what());
  }
  return Wrap(env, graph);
}

napi_value Read(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!Args(env, info, argv)) return Fail(env, "read takes 2 arguments");
  std::string path;
  if (!String(env, argv[0], &path)) return Fail(env, "path must be a string");
  uint32_t dim;
  if (!Uint(env, argv[1], &dim) || dim == 0) return Fail(env, "dim must be a positive integer");
  Graph* graph = nullptr;
  try {
    graph = new Graph(dim, path);
  } catch (const std::exception& error) {
    return Error(env, std::string("cannot read the graph: ") + error.what());
  }
  return Wrap(env, graph);
}

napi_value Add(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Graph* graph = GraphCall(env, info, argv, "add");
  if (!graph) return nullptr;
  void* labelsData;
  size_t rows;
  if (!TypedArray(env, argv[1], napi_uint32_array, &labelsData, &rows)) return Fail(env, "labels must be a Uint32Array");
  void* vectorsData;
  size_t values;
  if (!TypedArray(env, argv[2], napi_float32_array, &vectorsData, &values)) return Fail(env, "vectors must be a Float32Array");
  if (values != rows * graph->dim) return Fail(env, "vectors must hold dim values for each label", true);
  uint32_t threads;
  if (!Uint(env, argv[3], &threads) || threads == 0) return Fail(env, "threads must be a positive integer");
  const uint32_t* labels = static_cast<const uint32_t*>(labelsData);
  const float* vectors = static_cast<const float*>(vectorsData);
  hnswlib::HierarchicalNSW<float>& index = graph->index;
  const size_t before = index.getCurrentElementCount();
  // The rows added get their codes whether or not the rest of the batch goes in.
  struct Encoded {
    Graph* graph;
    size_t from;
    ~Encoded() { graph->encode(from, graph->index.getCurrentElementCount()); }
  } encoded{graph, before};

  try {
    const size_t needed = index.getCurrentElementCount() + rows;
    if (needed > index.getMaxElements()) graph->grow(std::max(needed, index.getMaxElements() * 2));
    size_t start = 0;
    // The first row sets the entry point before any other thread looks for it.
    if (rows > 0 && index.getCurrentElementCount() == 0) {
      index.addPoint(vectors, labels[0]);
      start = 1;
    }
    // A few rows are not worth a thread.
    const size_t workers = std::min<size_t>(threads, std::max<size_t>(1, (rows - start) / 16));
    if (workers <= 1) {
      for (size_t i = start; i < rows; i++) index.addPoint(vectors + i * graph->dim, labels[i]);
    } else {
      std::atomic<size_t> next(start);
      std::atomic<bool> failed(false);
      std::string failure;
      std::mutex failureLock;
      auto work = [&]() {
        for (;;) {
          const size_t i = next.fetch_add(1);
          if (i >= rows || failed.load()) return;
          try {
            index.addPoint(vectors + i * graph->dim, labels[i]);
          } catch (const std::exception& error) {
            std::lock_guard<std::mutex> hold(failureLock);
            if (!failed.exchange(true)) failure = error.what();
            return;
          }
        }
      };
      std::vector<std::thread> pool;
      pool.reserve(workers - 1);
      for (size_t t = 1; t < workers; t++) pool.emplace_back(work);
      work();
      for (std::thread& thread : pool) thread.join();
      if (failed.load()) return Error(env, "adding rows failed: " + failure);
    }
  } catch (const std::exception& error) {
    return Error(env, std::string("adding rows failed: ") + error.what());
  }
  return nullptr;
}

napi_value Write(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Graph* graph = GraphCall(env, info, argv, "write");
  if (!graph) return nullptr;
  std::string path;
  if (!String(env, argv[1], &path)) return Fail(env, "path must be a string");
  try {
    graph->index.saveIndex(path);
  } catch (const std::exception& error) {
    return Error(env, std::string("cannot write the graph: ") + error.what());
  }
  return nullptr;
}

napi_value Number(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

// count, capacity, dim: one number about a graph.
template <size_t (*Get)(Graph&)>
napi_value Getter(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Graph* graph = GraphCall(env, info, argv, "count, capacity and dim each");
  if (!graph) return nullptr;
  return Number(env, static_cast<double>(Get(*graph)));
}

size_t CountOf(Graph& graph) { return graph.index.getCurrentElementCount(); }
size_t CapacityOf(Graph& graph) { return graph.index.getMaxElements(); }
size_t DimOf(Graph& graph) { return graph.dim; }

napi_value Resize(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Graph* graph = GraphCall(env, info, argv, "resize");
  if (!graph) return nullptr;
  uint32_t capacity;
  if (!Uint(env, argv[1], &capacity) || capacity == 0) return Fail(env, "capacity must be a positive integer");
  if (capacity < graph->index.getCurrentElementCount()) return Fail(env, "capacity is below the rows the graph holds", true);
  try {
    graph->grow(capacity);
  } catch (const std::exception& error) {
    return Error(env, std::string("cannot grow the graph: ") + error.what());
  }
  return nullptr;
}

napi_value SetEf(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Graph* graph = GraphCall(env, info, argv, "setEf");
  if (!graph) return nullptr;
  uint32_t ef;
  if (!Uint(env, argv[1], &ef) || ef == 0) return Fail(env, "ef must be a positive integer");
  graph->index.setEf(ef);
  return nullptr;
}

napi_value MarkDelete(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Graph* graph = GraphCall(env, info, argv, "markDelete");
  if (!graph) return nullptr;
  uint32_t label;
  if (!Uint(env, argv[1], &label)) return Fail(env, "label must be an integer");
  try {
    graph->index.markDelete(label);
  } catch (const std::exception& error) {
    return Error(env, std::string("cannot remove label ") + std::to_string(label) + ": " + error.what());
  }
  return nullptr;
}

napi_value Point(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Graph* graph = GraphCall(env, info, argv, "point");
  if (!graph) return nullptr;
  uint32_t label;
  if (!Uint(env, argv[1], &label)) return Fail(env, "label must be an integer");
  std::vector<float> values;
  try {
    values = graph->index.getDataByLabel<float>(label);
  } catch (const std::exception& error) {
    return Error(env, std::string("no row for label ") + std::to_string(label) + ": " + error.what());
  }
  napi_value buffer, result;
  void* data;
  if (napi_create_arraybuffer(env, values.size() * sizeof(float), &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float32_array, values.size(), buffer, 0, &result) != napi_ok) {
    return nullptr;
  }
  std::copy(values.begin(), values.end(), static_cast<float*>(data));
  return result;
}

// A filter that asks a JavaScript function about each label; once it throws, every label is refused
// and the search's caller rethrows.
class Accept : public hnswlib::BaseFilterFunctor {
 public:
  Accept(napi_env env, napi_value fn) : env_(env), fn_(fn) {}
  bool operator()(hnswlib::labeltype label) override {
    if (failed_) return false;
    napi_value argument, result, global;
    bool answer = false;
    if (napi_get_global(env_, &global) != napi_ok || napi_create_uint32(env_, static_cast<uint32_t>(label), &argument) != napi_ok ||
        napi_call_function(env_, global, fn_, 1, &argument, &result) != napi_ok || napi_get_value_bool(env_, result, &answer) != napi_ok) {
      failed_ = true;
      return false;
    }
    return answer;
  }
  bool failed() const { return failed_; }

 private:
  napi_env env_;
  napi_value fn_;
  bool failed_ = false;
};

napi_value Search(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Graph* graph = GraphCall(env, info, argv, "search");
  if (!graph) return nullptr;
  void* queryData;
  size_t queryLength;
  if (!TypedArray(env, argv[1], napi_float32_array, &queryData, &queryLength) || queryLength != graph->dim) {
    return Fail(env, "query must be a Float32Array of dim values");
  }
  uint32_t k;
  if (!Uint(env, argv[2], &k) || k == 0) return Fail(env, "k must be a positive integer");
  napi_valuetype acceptType;
  napi_typeof(env, argv[3], &acceptType);
  if (acceptType != napi_function && acceptType != napi_null && acceptType != napi_undefined) return Fail(env, "accept must be a function or null");
  std::unique_ptr<Accept> accept;
  if (acceptType == napi_function) accept.reset(new Accept(env, argv[3]));

  Found found;
  try {
    found = graph->search(static_cast<const float*>(queryData), k, accept.get());
  } catch (const std::exception& error) {
    return Error(env, std::string("search failed: ") + error.what());
  }
  if (accept && accept->failed()) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) return Fail(env, "accept must answer true or false");
    return nullptr;
  }
  const size_t n = found.size();
  napi_value labelsBuffer, distancesBuffer, labels, distances, result;
  void* labelsOut;
  void* distancesOut;
  if (napi_create_arraybuffer(env, n * 4, &labelsOut, &labelsBuffer) != napi_ok ||
      napi_create_arraybuffer(env, n * 4, &distancesOut, &distancesBuffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint32_array, n, labelsBuffer, 0, &labels) != napi_ok ||
      napi_create_typedarray(env, napi_float32_array, n, distancesBuffer, 0, &distances) != napi_ok ||
      napi_create_object(env, &result) != napi_ok) {
    return nullptr;
  }
  for (size_t i = 0; i < n; i++) {
    static_cast<uint32_t*>(labelsOut)[i] = static_cast<uint32_t>(found[i].second);
    static_cast<float*>(distancesOut)[i] = found[i].first;
  }
  napi_set_named_property(env, result, "labels", labels);
  napi_set_named_property(env, result, "distances", distances);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  const std::pair<const char*, napi_callback> functions[] = {
      {"create", Create}, {"read", Read}, {"add", Add}, {"write", Write}, {"search", Search}, {"setEf", SetEf}, {"markDelete", MarkDelete},
      {"resize", Resize}, {"point", Point}, {"count", Getter<CountOf>}, {"capacity", Getter<CapacityOf>}, {"dim", Getter<DimOf>}};
  for (const auto& [name, callback] : functions) {
    napi_value fn;
    napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn);
    napi_set_named_property(env, exports, name, fn);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
