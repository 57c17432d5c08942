// Element-wise parts of the LSTM outside torch's own LSTM: the cell step of generation (CPU
// and CUDA; the matrix products stay in torch) and the keyed dropout masks of training.
#pragma once

#include <cstdint>

namespace repap::lstm {

/// One step of an LSTM cell for a batch (generation on the CPU): pre-activations gx + rec
/// (each B x 4H, float32; gate order i, f, g, o); writes the activations to act (B x 4H; may
/// alias rec), and c and h (B x H) from c_prev (which may alias c).
void step_forward_cpu(const float* gx, const float* rec, float* act, const float* c_prev,
                      float* c, float* h, int64_t batch, int64_t hidden);

/// Inverted-dropout mask of a time-major (T x B x H) tensor: 0 with probability p, else
/// 1 / (1 - p). Element (t, b, j) draws from the Philox stream of (seed, row_offset + b, t, j),
/// so a sample's mask does not depend on the batch it is in or how the batch is sharded.
void dropout_mask_cpu(uint64_t seed, float p, int64_t steps, int64_t batch, int64_t hidden,
                      int64_t row_offset, float* out);

/// One generation step of an LSTM cell on the GPU (lstm_cuda.cu), device pointers (null:
/// absent). Pre-activations: gates (B x 4H, the matrix products; float32, or bfloat16 with
/// gates_bf16) plus bias (4H) when given, plus, when bin_rows is given, rows bins[b] of
/// bin_rows and steps[b] of step_rows (layer 0's input as table lookups, each (*, 4H)).
/// Updates c and h (B x H, float32) in place for rows b with go[b] (all rows when go is null);
/// writes relu(h) to h_relu (float32) and/or relu_lo (bfloat16), the head's input, and h as
/// bfloat16 to h_lo (rows h_lo_stride apart: the next layer's input). With saved_c/saved_h,
/// rows whose consumed coordinate steps[b] ends an atom ((steps[b] + 1) % 3 == 0) also copy
/// the new c, h there (the state a redraw of the next atom goes back to).
struct CellStep {
  const void* gates = nullptr;
  bool gates_bf16 = false;
  const float* bias = nullptr;
  const float *bin_rows = nullptr, *step_rows = nullptr;
  const int64_t *bins = nullptr, *steps = nullptr;
  const bool* go = nullptr;
  float *c = nullptr, *h = nullptr, *h_relu = nullptr;
  void *relu_lo = nullptr, *h_lo = nullptr;
  int64_t h_lo_stride = 0;
  float *saved_c = nullptr, *saved_h = nullptr;
  int64_t batch = 0;
  int hidden = 0;
};

void cell_step_cuda(const CellStep& args, int device, void* stream);

/// The redraw rule on the GPU's state (L x B x H, h and c): rows b with back[b] take saved_h,
/// saved_c; rows with restart[b] become zero; the others stay untouched (and unread).
void rewind_cuda(const bool* back, const bool* restart, const float* saved_h,
                 const float* saved_c, float* h, float* c, int64_t layers, int64_t batch,
                 int64_t hidden, int device, void* stream);

}  // namespace repap::lstm
