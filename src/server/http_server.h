#pragma once
// The OpenAI-compatible HTTP server (vLLM's `vllm serve` routes): POST /v1/completions and
// /v1/chat/completions (whole responses or server-sent-event streams), GET /v1/models and
// /health. Requests from many connections are batched by the engine's scheduler (EngineWorker).
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "nanovllm/llm.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace nanovllm::server {

class EngineWorker;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                // 0: any free port (bind() says which)
  std::string served_model_name;  // the name clients give as "model"
  int http_threads = 64;          // connections served at once (a stream holds one to its end)
  bool log_requests = true;       // one line per request on stderr
  std::string api_key;            // when set, /v1 routes need "Authorization: Bearer <api_key>"
};

class HttpServer {
 public:
  HttpServer(LLM& llm, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port. Throws nanovllm::Error when it cannot.
  int bind();
  // Serves until stop(); call after bind().
  void serve();
  // Thread-safe: requests still running end with 503 (so no handler waits on a long
  // generation) and serve() returns soon after. (Before serve() has started listening there is
  // no listener to stop: wait for running() first.)
  void stop();
  bool running() const;
  // Engine requests in flight (a client that left mid-stream no longer counts once aborted).
  int64_t running_requests() const;

 private:
  void add_routes();
  void handle_generation(const httplib::Request& req, httplib::Response& res, bool chat);
  void handle_models(httplib::Response& res) const;
  void handle_tokenize(const httplib::Request& req, httplib::Response& res);
  void handle_detokenize(const httplib::Request& req, httplib::Response& res);

  LLM& llm_;
  ServerOptions options_;
  std::unique_ptr<EngineWorker> worker_;
  std::unique_ptr<httplib::Server> http_;
  std::atomic<int64_t> next_id_{0};
};

}  // namespace nanovllm::server
