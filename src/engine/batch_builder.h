#pragma once
// Turns the scheduler's choice for one step into the explicit BatchInput the model consumes.
#include "core/batch.h"
#include "scheduler/scheduler.h"

namespace nanovllm {

// block_table_width: columns of BatchInput::block_tables (fixed, so device buffers and captured
// graphs keep their shape); every sequence's table must fit in it.
BatchInput build_batch_input(const ScheduledBatch& batch, int32_t block_size,
                             int32_t block_table_width);

// Pads a decode batch to `num_seqs` rows for a captured graph: padded rows store nothing
// (slot -1), attend to one key of block 0, and their logits are ignored.
void pad_decode_batch(BatchInput& input, int32_t num_seqs);

}  // namespace nanovllm
