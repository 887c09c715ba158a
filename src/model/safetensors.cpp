#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/half.h"
#include "model/weight_source.h"

namespace nanovllm {

size_t safetensors_dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : source_name_(path.string()) {
  map_.emplace(path);
  bytes_ = map_->bytes();
  parse();
}

SafetensorsFile::SafetensorsFile(std::span<const uint8_t> bytes, std::string source_name)
    : bytes_(bytes), source_name_(std::move(source_name)) {
  parse();
}

void SafetensorsFile::parse() {
  using nlohmann::json;
  const std::string& src = source_name_;
  const uint64_t file_size = bytes_.size();
  NANOVLLM_CHECK(file_size >= 8, src, ": truncated safetensors file (", file_size,
                 " bytes; the 8-byte header length is missing)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes_[size_t(i)];
  NANOVLLM_CHECK(header_len <= file_size - 8, src, ": safetensors header length ", header_len,
                 " is longer than the file (", file_size, " bytes)");
  data_start_ = 8 + header_len;
  const uint64_t data_size = file_size - data_start_;

  const char* text = reinterpret_cast<const char*>(bytes_.data() + 8);
  json header = json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  NANOVLLM_CHECK(!header.is_discarded(), src, ": safetensors header is not valid JSON");
  NANOVLLM_CHECK(header.is_object(), src, ": safetensors header must be a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const json& e = it.value();
    auto where = [&] { return src + ": tensor '" + name + "'"; };
    NANOVLLM_CHECK(e.is_object(), where(), ": header entry must be an object");
    NANOVLLM_CHECK(e.contains("dtype") && e["dtype"].is_string(), where(), ": 'dtype' is missing or not a string");
    NANOVLLM_CHECK(e.contains("shape") && e["shape"].is_array(), where(), ": 'shape' is missing or not a list");
    NANOVLLM_CHECK(e.contains("data_offsets") && e["data_offsets"].is_array() && e["data_offsets"].size() == 2,
                   where(), ": 'data_offsets' must be a list [begin, end]");
    SafetensorsTensor t;
    t.name = name;
    t.dtype = e["dtype"].get<std::string>();
    const size_t elem = safetensors_dtype_size(t.dtype);
    NANOVLLM_CHECK(elem > 0, where(), ": unknown dtype '", t.dtype, "'");
    uint64_t numel = 1;
    for (const json& d : e["shape"]) {
      NANOVLLM_CHECK(d.is_number_unsigned(), where(), ": shape entries must be non-negative integers, got ",
                     d.dump());
      const uint64_t v = d.get<uint64_t>();
      NANOVLLM_CHECK(v <= uint64_t(std::numeric_limits<int64_t>::max()) &&
                         (v == 0 || numel <= (uint64_t(1) << 62) / v),
                     where(), ": shape ", e["shape"].dump(), " is too large");
      numel *= v;
      t.shape.push_back(int64_t(v));
    }
    for (const json& o : e["data_offsets"]) {
      NANOVLLM_CHECK(o.is_number_unsigned(), where(), ": data_offsets must be non-negative integers, got ",
                     e["data_offsets"].dump());
    }
    t.begin = e["data_offsets"][0].get<uint64_t>();
    t.end = e["data_offsets"][1].get<uint64_t>();
    NANOVLLM_CHECK(t.begin <= t.end, where(), ": data_offsets [", t.begin, ", ", t.end, "] are reversed");
    NANOVLLM_CHECK(t.end <= data_size, where(), ": data_offsets end ", t.end, " is past the end of the data (",
                   data_size, " bytes; the file is truncated or the offsets are wrong)");
    NANOVLLM_CHECK(numel <= std::numeric_limits<uint64_t>::max() / elem && t.end - t.begin == numel * elem,
                   where(), ": data_offsets span ", t.end - t.begin, " bytes but dtype ", t.dtype, " and shape ",
                   shape_string(t.shape), " need ", numel * elem);
    tensors_.push_back(std::move(t));
  }

  std::vector<const SafetensorsTensor*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    const auto* cur = by_offset[i];
    NANOVLLM_CHECK(cur->begin >= prev->end || cur->begin == cur->end || prev->begin == prev->end, src,
                   ": tensor '", cur->name, "' overlaps tensor '", prev->name, "' in the data section");
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> SafetensorsFile::data(const SafetensorsTensor& t) const {
  return bytes_.subspan(size_t(data_start_ + t.begin), size_t(t.end - t.begin));
}

std::vector<float> SafetensorsFile::to_f32(const SafetensorsTensor& t) const {
  const std::span<const uint8_t> raw = data(t);
  const int64_t n = t.numel();
  std::vector<float> out(static_cast<size_t>(n));
  if (t.dtype == "F32") {
    if (n > 0) std::memcpy(out.data(), raw.data(), size_t(n) * 4);
  } else if (t.dtype == "F16" || t.dtype == "BF16") {
    const bool bf16 = t.dtype == "BF16";
    const uint8_t* p = raw.data();
#pragma omp parallel for schedule(static) if (n > (1 << 20))
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[size_t(i)] = bf16 ? bf16_to_float(h) : f16_to_float(h);
    }
  } else {
    throw_error(source_name_, ": tensor '", t.name, "' has dtype ", t.dtype,
                ", which is not supported (supported: F32, F16, BF16)");
  }
  return out;
}

std::vector<float> SafetensorsFile::load_f32(const std::string& name, std::span<const int64_t> expected_shape) const {
  const SafetensorsTensor* t = find(name);
  NANOVLLM_CHECK(t != nullptr, source_name_, ": tensor '", name, "' not found");
  NANOVLLM_CHECK(std::equal(t->shape.begin(), t->shape.end(), expected_shape.begin(), expected_shape.end()),
                 source_name_, ": tensor '", name, "' has shape ", shape_string(t->shape), ", expected ",
                 shape_string(expected_shape));
  return to_f32(*t);
}

}  // namespace nanovllm
