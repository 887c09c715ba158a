#include "model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "model/gguf_dequant.h"

namespace nanovllm {
namespace {

constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

const char* value_type_name(uint32_t t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64",
                                "i64", "f64"};
  return t < 13 ? names[t] : "unknown";
}

// Bounds-checked little-endian cursor over the file image.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& src) : bytes_(bytes), src_(src) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <class T>
  T read(const char* what) {
    NANOVLLM_CHECK(remaining() >= sizeof(T), src_, ": truncated GGUF file while reading ", what, " at byte ", pos_,
                   " (file has ", bytes_.size(), " bytes)");
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    NANOVLLM_CHECK(len <= remaining(), src_, ": ", what, " at byte ", pos_ - 8, " claims ", len,
                   " bytes but only ", remaining(), " remain");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), size_t(len));
    pos_ += len;
    return s;
  }

  // A count of items each at least `min_item_bytes` long must fit in what remains.
  uint64_t read_count(const char* what, uint64_t min_item_bytes) {
    const uint64_t n = read<uint64_t>(what);
    NANOVLLM_CHECK(min_item_bytes == 0 || n <= remaining() / min_item_bytes, src_, ": ", what, " = ", n,
                   " cannot fit in the ", remaining(), " bytes that remain");
    return n;
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& src_;
  uint64_t pos_ = 0;
};

uint64_t scalar_size(uint32_t t) {
  switch (GgufValueType(t)) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::BOOL: return 1;
    case GgufValueType::U16:
    case GgufValueType::I16: return 2;
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::F32: return 4;
    case GgufValueType::U64:
    case GgufValueType::I64:
    case GgufValueType::F64: return 8;
    case GgufValueType::STRING: return 8;  // at least its length
    default: return 0;
  }
}

bool is_unsigned(uint32_t t) {
  auto v = GgufValueType(t);
  return v == GgufValueType::U8 || v == GgufValueType::U16 || v == GgufValueType::U32 || v == GgufValueType::U64;
}
bool is_signed(uint32_t t) {
  auto v = GgufValueType(t);
  return v == GgufValueType::I8 || v == GgufValueType::I16 || v == GgufValueType::I32 || v == GgufValueType::I64;
}
bool is_float(uint32_t t) { return GgufValueType(t) == GgufValueType::F32 || GgufValueType(t) == GgufValueType::F64; }

uint64_t read_unsigned(Reader& r, uint32_t t, const char* what) {
  switch (GgufValueType(t)) {
    case GgufValueType::U8: return r.read<uint8_t>(what);
    case GgufValueType::U16: return r.read<uint16_t>(what);
    case GgufValueType::U32: return r.read<uint32_t>(what);
    default: return r.read<uint64_t>(what);
  }
}
int64_t read_signed(Reader& r, uint32_t t, const char* what) {
  switch (GgufValueType(t)) {
    case GgufValueType::I8: return r.read<int8_t>(what);
    case GgufValueType::I16: return r.read<int16_t>(what);
    case GgufValueType::I32: return r.read<int32_t>(what);
    default: return r.read<int64_t>(what);
  }
}
double read_float(Reader& r, uint32_t t, const char* what) {
  if (GgufValueType(t) == GgufValueType::F32) return r.read<float>(what);
  return r.read<double>(what);
}

GgufValue read_value(Reader& r, uint32_t type, const std::string& src, const std::string& key) {
  const char* what = "a metadata value";
  GgufValue v;
  v.type = GgufValueType(type);
  if (is_unsigned(type)) {
    v.value = read_unsigned(r, type, what);
  } else if (is_signed(type)) {
    v.value = read_signed(r, type, what);
  } else if (is_float(type)) {
    v.value = read_float(r, type, what);
  } else if (GgufValueType(type) == GgufValueType::BOOL) {
    v.value = r.read<uint8_t>(what) != 0;
  } else if (GgufValueType(type) == GgufValueType::STRING) {
    v.value = r.read_string("a metadata string");
  } else if (GgufValueType(type) == GgufValueType::ARRAY) {
    const uint32_t elem = r.read<uint32_t>("an array element type");
    v.elem_type = GgufValueType(elem);
    NANOVLLM_CHECK(elem != uint32_t(GgufValueType::ARRAY), src, ": metadata key '", key,
                   "' is an array of arrays, which is not supported");
    NANOVLLM_CHECK(scalar_size(elem) > 0, src, ": metadata key '", key, "' has an array of unknown type ", elem);
    const uint64_t n = r.read_count("an array length", scalar_size(elem));
    if (is_unsigned(elem) || is_signed(elem)) {
      std::vector<int64_t> xs(static_cast<size_t>(n));
      for (auto& x : xs) {
        if (is_signed(elem)) {
          x = read_signed(r, elem, what);
        } else {
          const uint64_t u = read_unsigned(r, elem, what);
          NANOVLLM_CHECK(u <= uint64_t(std::numeric_limits<int64_t>::max()), src, ": metadata key '", key,
                         "' holds ", u, ", too large for int64");
          x = int64_t(u);
        }
      }
      v.value = std::move(xs);
    } else if (is_float(elem)) {
      std::vector<double> xs(static_cast<size_t>(n));
      for (auto& x : xs) x = read_float(r, elem, what);
      v.value = std::move(xs);
    } else if (GgufValueType(elem) == GgufValueType::BOOL) {
      std::vector<bool> xs(static_cast<size_t>(n));
      for (size_t i = 0; i < xs.size(); ++i) xs[i] = r.read<uint8_t>(what) != 0;
      v.value = std::move(xs);
    } else {
      std::vector<std::string> xs;
      xs.reserve(static_cast<size_t>(n));
      for (uint64_t i = 0; i < n; ++i) xs.push_back(r.read_string("a metadata string"));
      v.value = std::move(xs);
    }
  } else {
    throw_error(src, ": metadata key '", key, "' has unknown value type ", type);
  }
  return v;
}

}  // namespace

GgmlTypeInfo ggml_type_info(uint32_t type) {
  // (name, values per block, bytes per block) as ggml defines them.
  switch (type) {
    case 0: return {"F32", 1, 4};
    case 1: return {"F16", 1, 2};
    case 2: return {"Q4_0", 32, 18};
    case 3: return {"Q4_1", 32, 20};
    case 6: return {"Q5_0", 32, 22};
    case 7: return {"Q5_1", 32, 24};
    case 8: return {"Q8_0", 32, 34};
    case 9: return {"Q8_1", 32, 40};
    case 10: return {"Q2_K", 256, 84};
    case 11: return {"Q3_K", 256, 110};
    case 12: return {"Q4_K", 256, 144};
    case 13: return {"Q5_K", 256, 176};
    case 14: return {"Q6_K", 256, 210};
    case 15: return {"Q8_K", 256, 292};
    case 16: return {"IQ2_XXS", 256, 66};
    case 17: return {"IQ2_XS", 256, 74};
    case 18: return {"IQ3_XXS", 256, 98};
    case 19: return {"IQ1_S", 256, 50};
    case 20: return {"IQ4_NL", 32, 18};
    case 21: return {"IQ3_S", 256, 110};
    case 22: return {"IQ2_S", 256, 82};
    case 23: return {"IQ4_XS", 256, 136};
    case 24: return {"I8", 1, 1};
    case 25: return {"I16", 1, 2};
    case 26: return {"I32", 1, 4};
    case 27: return {"I64", 1, 8};
    case 28: return {"F64", 1, 8};
    case 29: return {"IQ1_M", 256, 56};
    case 30: return {"BF16", 1, 2};
    case 34: return {"TQ1_0", 256, 54};
    case 35: return {"TQ2_0", 256, 66};
    case 39: return {"MXFP4", 32, 17};
    default: return {"unknown", 0, 0};
  }
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

GgufFile::GgufFile(const std::filesystem::path& path) : source_name_(path.string()) {
  map_.emplace(path);
  bytes_ = map_->bytes();
  parse();
}

GgufFile::GgufFile(std::span<const uint8_t> bytes, std::string source_name)
    : bytes_(bytes), source_name_(std::move(source_name)) {
  parse();
}

void GgufFile::parse() {
  const std::string& src = source_name_;
  Reader r(bytes_, src);
  NANOVLLM_CHECK(bytes_.size() >= 4 && std::memcmp(bytes_.data(), "GGUF", 4) == 0, src,
                 ": not a GGUF file (bad magic; expected \"GGUF\")");
  (void)r.read<uint32_t>("the magic");
  version_ = r.read<uint32_t>("the version");
  NANOVLLM_CHECK(version_ == 2 || version_ == 3, src, ": GGUF version ", version_,
                 " is not supported (supported: 2, 3)");
  // A tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes; a KV at
  // least 8 (key) + 4 (type) + 1 bytes.
  const uint64_t tensor_count = r.read<uint64_t>("the tensor count");
  const uint64_t kv_count = r.read<uint64_t>("the metadata count");
  NANOVLLM_CHECK(kv_count <= r.remaining() / 13, src, ": metadata count ", kv_count, " cannot fit in the ",
                 r.remaining(), " bytes that remain");
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = r.read_string("a metadata key");
    const uint32_t type = r.read<uint32_t>("a metadata value type");
    GgufValue v = read_value(r, type, src, key);
    NANOVLLM_CHECK(metadata_.emplace(key, std::move(v)).second, src, ": metadata key '", key, "' appears twice");
  }
  NANOVLLM_CHECK(tensor_count <= r.remaining() / 24, src, ": tensor count ", tensor_count, " cannot fit in the ",
                 r.remaining(), " bytes that remain");
  if (const GgufValue* a = find("general.alignment")) {
    NANOVLLM_CHECK(a->type == GgufValueType::U32, src, ": metadata key 'general.alignment' must be u32, got ",
                   value_type_name(uint32_t(a->type)));
    alignment_ = std::get<uint64_t>(a->value);
    NANOVLLM_CHECK(alignment_ > 0 && (alignment_ & (alignment_ - 1)) == 0, src,
                   ": metadata key 'general.alignment' = ", alignment_, " must be a power of two");
  }
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    t.name = r.read_string("a tensor name");
    const uint32_t n_dims = r.read<uint32_t>("a tensor's dimension count");
    auto where = [&] { return src + ": tensor '" + t.name + "'"; };
    NANOVLLM_CHECK(n_dims >= 1 && n_dims <= kMaxDims, where(), " has ", n_dims, " dimensions (expected 1 to 4)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t dim = r.read<uint64_t>("a tensor dimension");
      NANOVLLM_CHECK(dim <= (uint64_t(1) << 40) && (dim == 0 || numel <= (uint64_t(1) << 50) / dim), where(),
                     " has an impossibly large dimension ", dim);
      numel *= dim;
      t.dims.push_back(int64_t(dim));
    }
    t.type = r.read<uint32_t>("a tensor type");
    t.offset = r.read<uint64_t>("a tensor offset");
    const GgmlTypeInfo info = ggml_type_info(t.type);
    NANOVLLM_CHECK(info.block_elems > 0, where(), " has unknown ggml type ", t.type);
    NANOVLLM_CHECK(t.dims[0] % info.block_elems == 0, where(), " of type ", info.name, ": first dimension ",
                   t.dims[0], " is not a multiple of the block size ", info.block_elems);
    t.nbytes = numel / uint64_t(info.block_elems) * uint64_t(info.block_bytes);
    NANOVLLM_CHECK(t.offset % alignment_ == 0, where(), ": offset ", t.offset, " is not a multiple of the alignment ",
                   alignment_);
    NANOVLLM_CHECK(tensor_index_.emplace(t.name, tensors_.size()).second, where(), " appears twice");
    tensors_.push_back(std::move(t));
  }
  const uint64_t end_of_infos = r.pos();
  data_start_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t data_size = data_start_ <= bytes_.size() ? bytes_.size() - data_start_ : 0;
  for (const auto& t : tensors_) {
    NANOVLLM_CHECK(t.offset <= data_size && t.nbytes <= data_size - t.offset, src, ": tensor '", t.name,
                   "' data [", t.offset, ", ", t.offset + t.nbytes, ") is past the end of the data section (",
                   data_size, " bytes; the file is truncated or the offset is wrong)");
  }
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    NANOVLLM_CHECK(by_offset[i]->offset >= by_offset[i - 1]->offset + by_offset[i - 1]->nbytes, src, ": tensor '",
                   by_offset[i]->name, "' overlaps tensor '", by_offset[i - 1]->name, "'");
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  NANOVLLM_CHECK(v->type == GgufValueType::STRING, source_name_, ": metadata key '", key,
                 "' must be a string, got ", value_type_name(uint32_t(v->type)));
  return std::get<std::string>(v->value);
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_signed(uint32_t(v->type))) return std::get<int64_t>(v->value);
  NANOVLLM_CHECK(is_unsigned(uint32_t(v->type)), source_name_, ": metadata key '", key,
                 "' must be an integer, got ", value_type_name(uint32_t(v->type)));
  const uint64_t u = std::get<uint64_t>(v->value);
  NANOVLLM_CHECK(u <= uint64_t(std::numeric_limits<int64_t>::max()), source_name_, ": metadata key '", key,
                 "' = ", u, " is too large");
  return int64_t(u);
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_float(uint32_t(v->type))) return std::get<double>(v->value);
  return double(*get_int(key));
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  NANOVLLM_CHECK(v->type == GgufValueType::BOOL, source_name_, ": metadata key '", key, "' must be a bool, got ",
                 value_type_name(uint32_t(v->type)));
  return std::get<bool>(v->value);
}

std::optional<std::vector<std::string>> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  NANOVLLM_CHECK(v->type == GgufValueType::ARRAY && v->elem_type == GgufValueType::STRING, source_name_,
                 ": metadata key '", key, "' must be an array of strings");
  return std::get<std::vector<std::string>>(v->value);
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  NANOVLLM_CHECK(v->type == GgufValueType::ARRAY &&
                     (is_signed(uint32_t(v->elem_type)) || is_unsigned(uint32_t(v->elem_type))),
                 source_name_, ": metadata key '", key, "' must be an array of integers");
  return std::get<std::vector<int64_t>>(v->value);
}

std::optional<std::vector<double>> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  NANOVLLM_CHECK(v->type == GgufValueType::ARRAY && is_float(uint32_t(v->elem_type)), source_name_,
                 ": metadata key '", key, "' must be an array of floats");
  return std::get<std::vector<double>>(v->value);
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> GgufFile::tensor_data(const GgufTensorInfo& t) const {
  return bytes_.subspan(size_t(data_start_ + t.offset), size_t(t.nbytes));
}

std::vector<float> GgufFile::tensor_f32(const GgufTensorInfo& t) const {
  return dequantize_to_f32(t.type, tensor_data(t), t.numel(), source_name_ + ": tensor '" + t.name + "'");
}

}  // namespace nanovllm
