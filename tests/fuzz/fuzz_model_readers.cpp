// libFuzzer target over the model-file readers: GGUF (header, metadata, tensor infos, dequant,
// metadata -> ModelConfig), safetensors (header, offsets, conversion) and config.json parsing,
// and the server's request bodies. Any input must either parse or throw nanovllm::Error (a
// request: server::RequestError); sanitizers catch everything else.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <span>

#include "core/error.h"
#include "model/gguf.h"
#include "model/gguf_dequant.h"
#include "model/gguf_weights.h"
#include "model/model_config.h"
#include "model/safetensors.h"
#include "server/openai_request.h"

using namespace nanovllm;

namespace {

void fuzz_gguf(std::span<const uint8_t> bytes) {
  GgufFile f(bytes, "fuzz.gguf");
  for (const auto& t : f.tensors()) {
    if (ggml_type_dequantizable(t.type) && t.numel() <= (1 << 20)) (void)f.tensor_f32(t);
  }
  try {
    ModelConfig c = gguf_model_config(f);
    (void)rope_inv_freq(c);
  } catch (const Error&) {
  }
}

void fuzz_safetensors(std::span<const uint8_t> bytes) {
  SafetensorsFile f(bytes, "fuzz.safetensors");
  for (const auto& t : f.tensors()) {
    if (t.numel() <= (1 << 20)) {
      try {
        (void)f.to_f32(t);
      } catch (const Error&) {
      }
    }
  }
}

void fuzz_config_json(std::span<const uint8_t> bytes) {
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  ModelConfig c = parse_model_config(j, "config.json");
  if (c.head_dim <= 1 << 16) (void)rope_inv_freq(c);
}

}  // namespace

// The server's request bodies: a refusal is a RequestError naming the field, never a crash.
void fuzz_request_json(std::span<const uint8_t> bytes) {
  const std::string body(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  for (auto parse : {&server::parse_completion_request, &server::parse_chat_request}) {
    server::GenerationRequest r;
    try {
      r = parse(body);
    } catch (const server::RequestError&) {
      continue;
    }
    try {
      r.sampling.validate();  // whatever parses is a request the engine accepts
    } catch (const Error& e) {
      std::fprintf(stderr, "parsed but invalid: %s\n", e.what());
      std::abort();
    }
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  try {
    if (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) {
      fuzz_gguf(bytes);
    } else if (size >= 1 && data[0] == '{') {
      fuzz_config_json(bytes);
      fuzz_request_json(bytes);
    } else {
      fuzz_safetensors(bytes);
    }
  } catch (const Error&) {
  }
  return 0;
}
