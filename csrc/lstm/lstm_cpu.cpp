// CPU loops of the fused LSTM element-wise kernels: OpenMP over batch rows, vectorised over
// the hidden units (the math is branch-free, see lstm_math.h).
#include "lstm/lstm.h"

#include "common/philox.h"
#include "lstm/lstm_math.h"

namespace repap::lstm {

void step_forward_cpu(const float* gx, float* gates, const float* c_prev, float* c, float* h,
                      int64_t batch, int64_t hidden) {
  const int64_t H = hidden;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    float* a = gates + b * 4 * H;
    const float* x = gx + b * 4 * H;
    const float* cp = c_prev ? c_prev + b * H : nullptr;
    float* cb = c + b * H;
    float* hb = h + b * H;
    if (cp == nullptr) {  // zero state: no recurrent part, c_prev = 0
      for (int64_t k = 0; k < 4 * H; ++k) a[k] = 0.0f;
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const CellForward r = cell_forward(x[j] + a[j], x[H + j] + a[H + j],
                                         x[2 * H + j] + a[2 * H + j], x[3 * H + j] + a[3 * H + j],
                                         cp ? cp[j] : 0.0f);
      a[j] = r.i;
      a[H + j] = r.f;
      a[2 * H + j] = r.g;
      a[3 * H + j] = r.o;
      cb[j] = r.c;
      hb[j] = r.h;
    }
  }
}

void step_backward_cpu(const float* act, const float* c, const float* c_prev, const float* dh_out,
                       const float* dh_rec, float* dc, float* dgates, int64_t batch,
                       int64_t hidden) {
  const int64_t H = hidden;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    const float* a = act + b * 4 * H;
    const float* cb = c + b * H;
    const float* cp = c_prev ? c_prev + b * H : nullptr;
    const float* dho = dh_out + b * H;
    const float* dhr = dh_rec ? dh_rec + b * H : nullptr;
    float* dcb = dc + b * H;
    float* d = dgates + b * 4 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const float dh = dho[j] + (dhr ? dhr[j] : 0.0f);
      const CellBackward r = cell_backward(a[j], a[H + j], a[2 * H + j], a[3 * H + j], cb[j],
                                           cp ? cp[j] : 0.0f, dh, dcb[j]);
      d[j] = r.di;
      d[H + j] = r.df;
      d[2 * H + j] = r.dg;
      d[3 * H + j] = r.do_;
      dcb[j] = r.dc_prev;
    }
  }
}

void dropout_mask_cpu(uint64_t seed, float p, int64_t steps, int64_t batch, int64_t hidden,
                      int64_t row_offset, float* out) {
  const float keep = 1.0f / (1.0f - p);
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  const int64_t blocks = (hidden + 3) / 4;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < steps; ++t) {
    for (int64_t b = 0; b < batch; ++b) {
      const uint64_t row = static_cast<uint64_t>(row_offset + b);
      float* o = out + (t * batch + b) * hidden;
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const Philox4 r = philox4x32_10(static_cast<uint32_t>(blk), static_cast<uint32_t>(t),
                                        static_cast<uint32_t>(row),
                                        static_cast<uint32_t>(row >> 32), k0, k1);
        for (int q = 0; q < 4 && 4 * blk + q < hidden; ++q)
          o[4 * blk + q] = uniform01(r.v[q]) < p ? 0.0f : keep;
      }
    }
  }
}

}  // namespace repap::lstm
