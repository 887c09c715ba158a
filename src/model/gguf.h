#pragma once
// A GGUF file (llama.cpp's format), versions 2 and 3:
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count | kv_count x (string key, u32 type, value)
//   | tensor_count x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset)
//   | padding to general.alignment (default 32) | tensor data (offsets relative to here).
// Strings are u64 length + bytes; arrays are u32 element type + u64 count + elements.
// Every count, length and offset is checked against the bytes that remain, so a malformed file
// gives an Error naming the file (and key or tensor), never a crash.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "model/mapped_file.h"

namespace nanovllm {

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
  U64 = 10, I64 = 11, F64 = 12,
};

// One metadata value. Scalars keep their type; integer arrays are widened to int64, float arrays
// to double (elem_type remembers what was written).
struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  GgufValueType elem_type = GgufValueType::U8;  // arrays only
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>,
               std::vector<std::string>, std::vector<bool>>
      value;
};

// ggml tensor types (ids as in ggml.h).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9, Q2_K = 10, Q3_K = 11,
  Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct GgmlTypeInfo {
  const char* name;     // "Q4_K"; "type N" when unknown
  int64_t block_elems;  // values per block (0 when the type is unknown)
  int64_t block_bytes;  // bytes per block
};
GgmlTypeInfo ggml_type_info(uint32_t type);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the fastest-varying (reversed HF shape)
  uint32_t type = 0;          // GgmlType id
  uint64_t offset = 0;        // relative to the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
};

class GgufFile {
 public:
  // Memory-maps and validates `path`.
  explicit GgufFile(const std::filesystem::path& path);
  // Validates an in-memory image that the caller keeps alive (tests, fuzzing).
  GgufFile(std::span<const uint8_t> bytes, std::string source_name);

  const std::string& source_name() const { return source_name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }

  // Metadata, by key.
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.count(key) > 0; }
  const GgufValue* find(const std::string& key) const;
  // Typed getters: nullopt when absent; Error naming the key when present with another type.
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;  // any integer type (u64 > INT64_MAX: error)
  std::optional<double> get_float(const std::string& key) const;  // F32/F64 (or an integer)
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::vector<std::string>> get_string_array(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_int_array(const std::string& key) const;
  std::optional<std::vector<double>> get_float_array(const std::string& key) const;

  // Tensors, in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  std::span<const uint8_t> tensor_data(const GgufTensorInfo& t) const;
  // Dequantized float32 values in GGUF element order (dims[0] fastest).
  std::vector<float> tensor_f32(const GgufTensorInfo& t) const;

 private:
  void parse();

  std::optional<MappedFile> map_;
  std::span<const uint8_t> bytes_;
  std::string source_name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_start_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace nanovllm
