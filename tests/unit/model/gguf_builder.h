#pragma once
// Writes GGUF images for tests: metadata of any value type and tensors with raw data, laid out
// as the format says (tensor data aligned to general.alignment). Independent of src/model/gguf.cpp.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace nanovllm::testing_util {

class GgufBuilder {
 public:
  // Value type ids of the GGUF spec.
  enum : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };

  template <class T>
  static void put(std::vector<uint8_t>& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  static void put_string(std::vector<uint8_t>& out, const std::string& s) {
    put<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
  }

  // A key with an already-encoded value payload.
  void kv_raw(const std::string& key, uint32_t type, const std::vector<uint8_t>& payload) {
    put_string(kv_, key);
    put<uint32_t>(kv_, type);
    kv_.insert(kv_.end(), payload.begin(), payload.end());
    ++kv_count_;
  }
  template <class T>
  void kv(const std::string& key, uint32_t type, T v) {
    std::vector<uint8_t> p;
    put<T>(p, v);
    kv_raw(key, type, p);
  }
  void kv_string(const std::string& key, const std::string& v) {
    std::vector<uint8_t> p;
    put_string(p, v);
    kv_raw(key, STRING, p);
  }
  template <class T>
  void kv_array(const std::string& key, uint32_t elem_type, const std::vector<T>& xs) {
    std::vector<uint8_t> p;
    put<uint32_t>(p, elem_type);
    put<uint64_t>(p, xs.size());
    for (const T& x : xs) put<T>(p, x);
    kv_raw(key, ARRAY, p);
  }
  void kv_string_array(const std::string& key, const std::vector<std::string>& xs) {
    std::vector<uint8_t> p;
    put<uint32_t>(p, STRING);
    put<uint64_t>(p, xs.size());
    for (const auto& x : xs) put_string(p, x);
    kv_raw(key, ARRAY, p);
  }

  // dims in GGUF order (dims[0] fastest); data placed at the next aligned offset.
  void tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t ggml_type, std::vector<uint8_t> data) {
    tensors_.push_back({name, std::move(dims), ggml_type, std::move(data)});
  }

  std::vector<uint8_t> build(uint64_t alignment = 32, uint32_t version = 3) const {
    std::vector<uint8_t> out{'G', 'G', 'U', 'F'};
    put<uint32_t>(out, version);
    put<uint64_t>(out, tensors_.size());
    put<uint64_t>(out, kv_count_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors_) {
      offsets.push_back(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const auto& t = tensors_[i];
      put_string(out, t.name);
      put<uint32_t>(out, uint32_t(t.dims.size()));
      for (uint64_t d : t.dims) put<uint64_t>(out, d);
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, offsets[i]);
    }
    while (out.size() % alignment) out.push_back(0);
    for (const auto& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      while (out.size() % alignment) out.push_back(0);
    }
    return out;
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  std::vector<uint8_t> kv_;
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

}  // namespace nanovllm::testing_util
