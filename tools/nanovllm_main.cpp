#include "cli/main.h"

int main(int argc, char** argv) { return nanovllm::cli::run(argc, argv); }
