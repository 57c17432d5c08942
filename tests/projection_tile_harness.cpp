// The CUDA projection kernel's arithmetic (csrc/projection/projection_tile.h) and its walk over
// a tile, run on the host: every row set up as phase 1 does, then every thread's W-float
// stores in the kernel's order. tests/test_projection_tile.py builds it with the host
// compiler and holds its output to the CPU kernel, so the CUDA path's math is checked on
// machines without a GPU (the exponential is exp2f here, the SFU's ex2.approx there).
// Usage: harness N_BINS SIGMA PERIODIC W < x.f32 > out.f32
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "projection/projection_tile.h"

using namespace repap::projection;

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  const int n_bins = std::atoi(argv[1]), periodic = std::atoi(argv[3]), width = std::atoi(argv[4]);
  const float sigma = static_cast<float>(std::atof(argv[2]));
  std::vector<float> x;
  for (float v; std::fread(&v, sizeof v, 1, stdin) == 1;) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  const float c = exponent_coefficient(sigma, n_bins);
  const int w = window_half_width(c);
  const bool closed = periodic && c <= 0.5f && 2 * int64_t{w} + 1 <= n_bins;  // as project_cuda
  const float norm = closed ? static_cast<float>(std::sqrt(3.14159265358979 / c)) : 0.0f;
  const bool narrow = c * kLog2e > kMaxWideA;
  constexpr int kThreads = 256;
  std::vector<float> out(n * n_bins, -7.0f);  // poisoned: every element must be written
  std::vector<TileRow> rows(kThreads);
  for (int64_t row0 = 0; row0 < n; row0 += kThreads) {
    const int n_here = static_cast<int>(std::min<int64_t>(kThreads, n - row0));
    for (int t = 0; t < n_here; ++t) {
      int status;
      rows[t] = tile_row(x[row0 + t], n_bins, periodic != 0, c, w, norm, status);
    }
    float* tile = out.data() + row0 * n_bins;
    const int per_row = n_bins / width, n_vec = n_here * per_row;
    const int d_row = kThreads / per_row, d_vec = kThreads % per_row;
    for (int t = 0; t < kThreads; ++t) {
      int row = t / per_row, vec = t - row * per_row;
      for (int v = t; v < n_vec; v += kThreads) {
        for (int i = 0; i < width; ++i)
          tile[v * width + i] = narrow ? tile_value<true>(vec * width + i, rows[row], n_bins)
                                       : tile_value<false>(vec * width + i, rows[row], n_bins);
        vec += d_vec;
        row += d_row;
        if (vec >= per_row) vec -= per_row, ++row;
      }
    }
  }
  std::fwrite(out.data(), sizeof(float), out.size(), stdout);
  return 0;
}
