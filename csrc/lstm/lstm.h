// Fused element-wise parts of an LSTM layer's recurrence on the CPU. The matrix products stay
// in torch (BLAS); these kernels replace the dozen small element-wise torch ops per time step.
#pragma once

#include <cstdint>

namespace repap::lstm {

/// One forward step for a batch. gx (B x 4H) is the input part of the pre-activations; gates
/// (B x 4H) holds the recurrent part h_prev W_hh^T on entry (ignored when c_prev is null, the
/// zero initial state) and the activations i, f, g, o on exit. Writes c and h (B x H).
void step_forward_cpu(const float* gx, float* gates, const float* c_prev, float* c, float* h,
                      int64_t batch, int64_t hidden);

/// One backward step: act (B x 4H) activations, c and c_prev (B x H, c_prev may be null),
/// dh_out (B x H) from above, dh_rec (B x H, may be null) from the next step. dc (B x H) holds
/// dL/dc of this step on entry and of the previous step on exit; writes dgates (B x 4H).
void step_backward_cpu(const float* act, const float* c, const float* c_prev, const float* dh_out,
                       const float* dh_rec, float* dc, float* dgates, int64_t batch,
                       int64_t hidden);

/// Inverted-dropout mask of a time-major (T x B x H) tensor: 0 with probability p, else
/// 1 / (1 - p). Element (t, b, j) draws from the Philox stream of (seed, row_offset + b, t, j),
/// so a sample's mask does not depend on the batch it is in or how the batch is sharded.
void dropout_mask_cpu(uint64_t seed, float p, int64_t steps, int64_t batch, int64_t hidden,
                      int64_t row_offset, float* out);

}  // namespace repap::lstm
