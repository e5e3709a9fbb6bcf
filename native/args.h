// Argument checks shared by Memex's addons (scan.cc, hnsw.cc): a bad argument becomes a thrown
// TypeError or RangeError, never a read of the wrong memory.
#ifndef MEMEX_NATIVE_ARGS_H_
#define MEMEX_NATIVE_ARGS_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>

namespace memex {

inline napi_value Fail(napi_env env, const char* message, bool range = false) {
  if (range) napi_throw_range_error(env, nullptr, message);
  else napi_throw_type_error(env, nullptr, message);
  return nullptr;
}

inline bool TypedArray(napi_env env, napi_value value, napi_typedarray_type want, void** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return false;
  return type == want;
}

inline bool Uint(napi_env env, napi_value value, uint32_t* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) return false;
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) return false;
  if (!(number >= 0 && number <= 4294967295.0) || number != static_cast<double>(static_cast<uint32_t>(number))) return false;
  *out = static_cast<uint32_t>(number);
  return true;
}

// Exactly N arguments into argv.
template <size_t N>
bool Args(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  return napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) == napi_ok && argc == N;
}

}  // namespace memex

#endif  // MEMEX_NATIVE_ARGS_H_
