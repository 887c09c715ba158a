#pragma once
// A safetensors file: 8-byte little-endian header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the data.
// Every offset is validated when the file is opened, so reading a tensor never leaves the file.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/mapped_file.h"

namespace nanovllm {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;  // row-major
  uint64_t begin = 0;          // byte range [begin, end) inside the data section
  uint64_t end = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Memory-maps and validates `path`; throws Error naming the file (and tensor) on any defect.
  explicit SafetensorsFile(const std::filesystem::path& path);
  // Validates an in-memory image that the caller keeps alive (tests, fuzzing).
  SafetensorsFile(std::span<const uint8_t> bytes, std::string source_name);

  const std::string& source_name() const { return source_name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;
  // Raw bytes of a tensor (inside the mapping).
  std::span<const uint8_t> data(const SafetensorsTensor& t) const;
  // float32 values of a F32/F16/BF16 tensor; other dtypes throw Error naming the tensor.
  std::vector<float> to_f32(const SafetensorsTensor& t) const;
  // Looks up `name`, checks its shape equals expected_shape, converts to float32.
  std::vector<float> load_f32(const std::string& name, std::span<const int64_t> expected_shape) const;

 private:
  void parse();

  std::optional<MappedFile> map_;
  std::span<const uint8_t> bytes_;
  std::string source_name_;
  uint64_t data_start_ = 0;  // 8 + header length
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

// Size in bytes of one element of a safetensors dtype string, or 0 when unknown.
size_t safetensors_dtype_size(const std::string& dtype);

}  // namespace nanovllm
