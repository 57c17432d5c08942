// CPU sampler: OpenMP over structures, one small scratch row per thread.
#include <vector>

#include "sampler/sampler.h"
#include "sampler/sampler_math.h"

namespace repap::sampler {

void sample_step_cpu(const float* logits, int64_t batch, int n_bins, int mode, float temperature,
                     float* coords, int n_coords, const int64_t* k, const int64_t* structure,
                     const int64_t* attempt, uint64_t seed, const float* cell, float min_dist,
                     int64_t* bins) {
  check_arguments(n_bins, temperature, /*cuda=*/false);
  Geometry g;
  for (int i = 0; i < 9; ++i) g.cell[i] = cell[i];
  g.min_dist2 = min_dist > 0.0f ? min_dist * min_dist : 0.0f;
  const float inv_t = 1.0f / temperature;
#pragma omp parallel
  {
    std::vector<float> work(static_cast<size_t>(n_bins));
#pragma omp for schedule(dynamic, 64)
    for (int64_t b = 0; b < batch; ++b) {
      if (k[b] < 0) continue;
      float u_bin, u_pos;
      uniforms(seed, structure[b], k[b], attempt[b], u_bin, u_pos);
      float* row = coords + b * n_coords;
      const Draw d = draw_coordinate(logits + b * n_bins, n_bins, mode, inv_t, row,
                                     static_cast<int>(k[b]), g, u_bin, u_pos, work.data());
      bins[b] = d.bin;
      if (d.bin >= 0) row[k[b]] = d.value;
    }
  }
}

}  // namespace repap::sampler
