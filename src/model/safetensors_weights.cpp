#include "model/safetensors_weights.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "model/safetensors.h"

namespace nanovllm {
namespace {

class SafetensorsWeights final : public WeightSource {
 public:
  explicit SafetensorsWeights(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void add_file(const std::filesystem::path& path) {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
    const SafetensorsFile& f = *files_.back();
    for (const auto& t : f.tensors()) {
      auto [it, fresh] = owner_.emplace(t.name, &f);
      NANOVLLM_CHECK(fresh, dir_.string(), ": tensor '", t.name, "' is in both ", it->second->source_name(),
                     " and ", f.source_name());
    }
  }

  bool contains(const std::string& name) const override { return owner_.count(name) > 0; }

  std::vector<float> load_f32(const std::string& name, std::span<const int64_t> expected_shape) const override {
    auto it = owner_.find(name);
    NANOVLLM_CHECK(it != owner_.end(), dir_.string(), ": tensor '", name, "' not found in any safetensors file");
    return it->second->load_f32(name, expected_shape);
  }

  std::string describe() const override { return dir_.string(); }

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const SafetensorsFile*> owner_;
};

}  // namespace

std::unique_ptr<WeightSource> open_safetensors_folder(const std::filesystem::path& dir) {
  auto weights = std::make_unique<SafetensorsWeights>(dir);
  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(single)) {
    weights->add_file(single);
    return weights;
  }
  NANOVLLM_CHECK(std::filesystem::exists(index), dir.string(),
                 ": no weights found (expected model.safetensors or model.safetensors.index.json)");
  std::ifstream in(index);
  NANOVLLM_CHECK(in.good(), index.string(), ": cannot open the file");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  NANOVLLM_CHECK(!j.is_discarded(), index.string(), ": not valid JSON");
  NANOVLLM_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
                 ": field 'weight_map' is missing or not an object");
  std::map<std::string, std::vector<std::string>> by_file;  // shard -> tensors it should hold
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    NANOVLLM_CHECK(it.value().is_string(), index.string(), ": field 'weight_map' entry '", it.key(),
                   "' must be a file name");
    const std::string file = it.value().get<std::string>();
    NANOVLLM_CHECK(!file.empty() && file.find('/') == std::string::npos && file != "..", index.string(),
                   ": field 'weight_map' entry '", it.key(), "' names '", file, "', not a file in the folder");
    by_file[file].push_back(it.key());
  }
  NANOVLLM_CHECK(!by_file.empty(), index.string(), ": field 'weight_map' is empty");
  for (const auto& [file, names] : by_file) {
    const auto path = dir / file;
    NANOVLLM_CHECK(std::filesystem::exists(path), index.string(), ": shard '", file, "' (holding tensor '",
                   names.front(), "') does not exist in ", dir.string());
    weights->add_file(path);
    for (const auto& name : names) {
      NANOVLLM_CHECK(weights->contains(name), index.string(), ": tensor '", name, "' is mapped to '", file,
                     "' but that file does not hold it");
    }
  }
  return weights;
}

}  // namespace nanovllm
