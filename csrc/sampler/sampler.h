// Batched sampler: one call per generation step draws the next coordinate of every structure.
#pragma once

#include <cstdint>

namespace repap::sampler {

/// For each structure b with k[b] >= 0: draw coordinate k[b] from logits[b, :] (B x G;
/// mode kSoftmax or kSigmoid, divided by the temperature), with random numbers keyed by
/// (seed, structure[b], k[b], attempt[b]), and write it to coords[b, k[b]] (B x n_coords,
/// fractional) and its bin to bins[b]; bins[b] = -1 when every bin clashes (coords untouched).
/// cell: 3 x 3 lattice vectors (rows); min_dist <= 0 turns clash masking off.
void sample_step_cpu(const float* logits, int64_t batch, int n_bins, int mode, float temperature,
                     float* coords, int n_coords, const int64_t* k, const int64_t* structure,
                     const int64_t* attempt, uint64_t seed, const float* cell, float min_dist,
                     int64_t* bins);

#ifdef REPAP_WITH_CUDA
/// Same on device pointers, enqueued on `stream` of `device`.
void sample_step_cuda(const float* logits, int64_t batch, int n_bins, int mode, float temperature,
                      float* coords, int n_coords, const int64_t* k, const int64_t* structure,
                      const int64_t* attempt, uint64_t seed, const float* cell, float min_dist,
                      int64_t* bins, int device, void* stream);
#endif

}  // namespace repap::sampler
