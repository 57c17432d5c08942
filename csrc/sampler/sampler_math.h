// Per-structure math of the sampler, shared by the CPU loop and the CUDA kernel: draw the
// next coordinate of one structure from the model's distribution over G bins, masking at an
// atom's third coordinate the bins that would put it closer than min_dist to an earlier atom.
#pragma once

#include <cstdint>

#include "common/host_device.h"
#include "common/philox.h"
#include "projection/projection_math.h"

namespace repap::sampler {

constexpr int kSoftmax = 0;  // logits are log-probabilities up to a constant
constexpr int kSigmoid = 1;  // logits of independent sigmoids, normalised over the bins

constexpr int kClash = -1;      // Draw::bin when every bin is masked by a clash
constexpr int kBadLogits = -2;  // Draw::bin when a logit is NaN or +inf, or all are -inf

/// The cell and the clash distance. The caller guarantees min_dist < h_min / 2 (h: distances
/// between opposite faces): then a separation shorter than min_dist has every fractional
/// component inside (-1/2, 1/2), so the image found by rounding fractional differences is the
/// only one that can clash, in a cell of any shape.
struct Geometry {
  float cell[9];    // rows are lattice vectors (Angstrom)
  float min_dist2;  // squared; <= 0 turns the check off
};

struct Draw {
  int bin;            // kClash when every bin is masked, kBadLogits for unusable logits
  float value;        // fractional coordinate in [0, 1)
};

/// Fractional position (bin + u) / G of a draw, kept below 1: in float32 (G - 1 + u) / G
/// rounds to exactly 1.0 when u is within about G * 2^-25 of 1.
REPAP_HD float bin_position(int bin, float u, int n_bins) {
  const float x = (bin + u) / n_bins;
  const float below_one = projection::float_from_bits(0x3f7fffff);  // 1 - 2^-24
  return x < below_one ? x : below_one;
}

/// log of the unnormalised probability of bin k from the model output l.
REPAP_HD float log_weight(float l, int mode) {
  if (mode == kSoftmax) return l;
  // log sigmoid(l) = min(l, 0) - log(1 + exp(-|l|))
  const float a = l < 0.0f ? l : -l;
  return (l < 0.0f ? l : 0.0f) - log1pf(projection::exp_nonpositive(a));
}

/// True when fractional position p is closer than min_dist to any of the n earlier atoms.
REPAP_HD bool clashes(const float* p, const float* earlier, int n, const Geometry& g) {
  for (int j = 0; j < n; ++j) {
    float d[3];
    for (int a = 0; a < 3; ++a) {
      const float x = p[a] - earlier[3 * j + a];
      d[a] = x - rintf(x);
    }
    float r2 = 0.0f;
    for (int c = 0; c < 3; ++c) {
      const float r = d[0] * g.cell[c] + d[1] * g.cell[3 + c] + d[2] * g.cell[6 + c];
      r2 += r * r;
    }
    if (r2 < g.min_dist2) return true;
  }
  return false;
}

/// Draw coordinate k (atom k / 3, axis k % 3) of one structure. `coords` holds its 3N
/// fractional coordinates, those before k already drawn. u_bin and u_pos are uniform in
/// [0, 1): the bin is the categorical draw, the position inside the bin is (bin + u_pos) / G
/// (uniform within the bin). At the third coordinate of an atom, bins whose position clashes
/// with an earlier atom are masked (exact conditional sampling given u_pos). `work` has G
/// floats of scratch.
REPAP_HD Draw draw_coordinate(const float* logits, int n_bins, int mode, float inv_temperature,
                              const float* coords, int k, const Geometry& g, float u_bin,
                              float u_pos, float* work) {
  // A NaN or +inf logit (a diverged model) is reported, not mistaken for a clash; -inf is a
  // zero probability, but not for every bin. The maximum is subtracted before the scaling by
  // 1/T, so no temperature with a finite inverse can overflow.
  const float inf = projection::float_from_bits(0x7f800000);
  float top = -inf;
  for (int b = 0; b < n_bins; ++b) {
    if (!(logits[b] < inf)) return Draw{kBadLogits, 0.0f};
    const float w = log_weight(logits[b], mode);
    work[b] = w;
    top = w > top ? w : top;
  }
  if (!(top > -inf)) return Draw{kBadLogits, 0.0f};
  const int atom = k / 3;
  const bool mask = g.min_dist2 > 0.0f && k % 3 == 2 && atom > 0;
  float total = 0.0f;
  for (int b = 0; b < n_bins; ++b) {
    float w = projection::exp_nonpositive((work[b] - top) * inv_temperature);
    if (mask && w > 0.0f) {
      const float p[3] = {coords[3 * atom], coords[3 * atom + 1], bin_position(b, u_pos, n_bins)};
      if (clashes(p, coords, atom, g)) w = 0.0f;
    }
    work[b] = w;
    total += w;
  }
  Draw out{kClash, 0.0f};
  if (!(total > 0.0f)) return out;
  const float target = u_bin * total;
  float cum = 0.0f;
  int last = -1;
  for (int b = 0; b < n_bins; ++b) {
    if (work[b] <= 0.0f) continue;
    last = b;
    cum += work[b];
    if (cum > target) break;
  }
  out.bin = last;  // rounding can leave target just above the last partial sum
  out.value = bin_position(last, u_pos, n_bins);
  return out;
}

/// The two uniforms of (seed, structure, coordinate k, attempt).
REPAP_HD void uniforms(uint64_t seed, int64_t structure, int64_t k, int64_t attempt, float& u_bin,
                       float& u_pos) {
  const Philox4 r = philox4x32_10(
      static_cast<uint32_t>(structure), static_cast<uint32_t>(static_cast<uint64_t>(structure) >> 32),
      static_cast<uint32_t>(k), static_cast<uint32_t>(attempt), static_cast<uint32_t>(seed),
      static_cast<uint32_t>(seed >> 32));
  u_bin = uniform01(r.v[0]);
  u_pos = uniform01(r.v[1]);
}

}  // namespace repap::sampler
