// Fused element-wise parts of an LSTM layer's recurrence on the CPU. The matrix products stay
// in torch (BLAS); these kernels replace the dozen small element-wise torch ops per time step.
#pragma once

#include <cstdint>

namespace repap::lstm {

/// One forward step for a batch. gx (B x 4H, float32) is the input part of the
/// pre-activations and rec (B x 4H) the recurrent part h_prev W_hh^T: float32, or bfloat16
/// when `low`. Writes the activations i, f, g, o to act (B x 4H; may alias a float32 rec),
/// c and h (B x H) from c_prev, and when `low` h once more as bfloat16 to h_bf16 (the next
/// step's matmul operand). The first step passes zeros for rec and c_prev.
void step_forward_cpu(const float* gx, const void* rec, bool low, float* act,
                      const float* c_prev, float* c, float* h, uint16_t* h_bf16, int64_t batch,
                      int64_t hidden);

/// One backward step: act (B x 4H) activations, c and c_prev (B x H), dh_out (B x H) from
/// above and dh_rec (B x H; float32, or bfloat16 when `low`) from the next step. dc (B x H)
/// holds dL/dc of this step on entry and of the previous step on exit. Writes dgates
/// (B x 4H), and when `low` once more as bfloat16 to dgates_bf16.
void step_backward_cpu(const float* act, const float* c, const float* c_prev, const float* dh_out,
                       const void* dh_rec, bool low, float* dc, float* dgates,
                       uint16_t* dgates_bf16, int64_t batch, int64_t hidden);

/// Inverted-dropout mask of a time-major (T x B x H) tensor: 0 with probability p, else
/// 1 / (1 - p). Element (t, b, j) draws from the Philox stream of (seed, row_offset + b, t, j),
/// so a sample's mask does not depend on the batch it is in or how the batch is sharded.
void dropout_mask_cpu(uint64_t seed, float p, int64_t steps, int64_t batch, int64_t hidden,
                      int64_t row_offset, float* out);

/// One generation step of an LSTM cell on the GPU (lstm_cuda.cu): pre-activations are gates
/// (B x 4H, the matrix products and biases) plus, when bin_rows is given, rows bins[b] of
/// bin_rows and steps[b] of step_rows (layer 0's input as table lookups, each (*, 4H)).
/// Updates c and h (B x H) in place for rows b with go[b] (all rows when go is null), and
/// writes relu(h) to h_relu when given (the head's input). With saved_c/saved_h, rows whose
/// consumed coordinate steps[b] ends an atom ((steps[b] + 1) % 3 == 0) also copy the new c, h
/// there (the state a redraw of the next atom goes back to).
void cell_step_cuda(const float* gates, const float* bin_rows, const float* step_rows,
                    const int64_t* bins, const int64_t* steps, const bool* go, float* c, float* h,
                    float* h_relu, float* saved_c, float* saved_h, int64_t batch,
                    int64_t hidden, int device, void* stream);

}  // namespace repap::lstm
