#include "model/gguf_weights.h"

#include "core/error.h"

namespace nanovllm {

GgufModel open_gguf_model(const std::filesystem::path& path) { throw_error(path.string(), ": GGUF not yet"); }

}  // namespace nanovllm
