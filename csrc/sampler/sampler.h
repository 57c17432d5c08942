// Batched sampler: one call per generation step draws the next coordinate of every structure.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace repap::sampler {

/// Bins past this count are refused on CUDA, whose per-thread scratch row is a fixed array.
constexpr int kMaxCudaBins = 1024;

/// Refuse what the kernels cannot do: a temperature whose inverse overflows float32 (the
/// scaled logits would be inf or NaN), and on CUDA more bins than the per-thread scratch row.
inline void check_arguments(int n_bins, float temperature, bool cuda) {
  if (!(temperature > 0.0f) || !std::isfinite(1.0f / temperature))
    throw std::invalid_argument("temperature: expected a positive number whose inverse is "
                                "finite in float32, got " + std::to_string(temperature));
  if (n_bins < 1) throw std::invalid_argument("n_bins: expected at least 1");
  if (cuda && n_bins > kMaxCudaBins)
    throw std::invalid_argument("n_bins: the CUDA sampler handles at most " +
                                std::to_string(kMaxCudaBins) + " bins, got " +
                                std::to_string(n_bins) + "; generate on the CPU");
}

/// For each structure b with k[b] >= 0: draw coordinate k[b] from logits[b, :] (B x G;
/// mode kSoftmax or kSigmoid, divided by the temperature), with random numbers keyed by
/// (seed, structure[b], k[b], attempt[b]), and write it to coords[b, k[b]] (B x n_coords,
/// fractional) and its bin to bins[b]; bins[b] = -1 when every bin clashes, -2 when the
/// logits are unusable (NaN or +inf, or all -inf); coords untouched then.
/// cell: 3 x 3 lattice vectors (rows); min_dist <= 0 turns clash masking off.
void sample_step_cpu(const float* logits, int64_t batch, int n_bins, int mode, float temperature,
                     float* coords, int n_coords, const int64_t* k, const int64_t* structure,
                     const int64_t* attempt, uint64_t seed, const float* cell, float min_dist,
                     int64_t* bins);

/// The working rows of a CUDA generation batch (repap.sampling), device pointers: n
/// structures, their counters (int64), flags (bool), LSTM state (layers x n x hidden, float32)
/// and logits (n x n_bins, float32).
struct RuleRows {
  int64_t n = 0;
  int n_coords = 0, n_bins = 0, layers = 0, hidden = 0;
  int64_t *k = nullptr, *k_first = nullptr, *k_rest = nullptr, *bins = nullptr;
  int64_t *attempt = nullptr, *tries = nullptr, *redrawn = nullptr, *restarts = nullptr;
  int64_t* bad = nullptr;
  bool *done = nullptr, *failed = nullptr, *go = nullptr;
  float *h = nullptr, *c = nullptr, *logits = nullptr;
  const float *saved_h = nullptr, *saved_c = nullptr;
  float* saved_logits = nullptr;
};

#ifdef REPAP_WITH_CUDA
/// Before a step's draws: k_first[b] = k[b] for live structures at their first coordinate,
/// k_rest[b] = k[b] for the other live ones (-1 elsewhere); bins = -1.
void rules_before_draw_cuda(const RuleRows& r, int device, void* stream);

/// After the draws: a structure whose draw found no bin goes back to its atom's first
/// coordinate (saved LSTM state and logits), or after max_retries restarts from zero, or after
/// max_restarts fails; a drawn last coordinate finishes it; go[b]: its drawn coordinate goes
/// into the LSTM. Bad logits are recorded in bad[b].
void rules_after_draw_cuda(const RuleRows& r, int64_t max_retries, int64_t max_restarts,
                           int device, void* stream);

/// After the LSTM step: rows with go take new_logits (n x n_bins) and advance k; at an atom's
/// first coordinate its logits are saved and its tries reset.
void rules_after_step_cuda(const RuleRows& r, const float* new_logits, int device, void* stream);

/// Same on device pointers, enqueued on `stream` of `device`.
void sample_step_cuda(const float* logits, int64_t batch, int n_bins, int mode, float temperature,
                      float* coords, int n_coords, const int64_t* k, const int64_t* structure,
                      const int64_t* attempt, uint64_t seed, const float* cell, float min_dist,
                      int64_t* bins, int device, void* stream);
#endif

}  // namespace repap::sampler
