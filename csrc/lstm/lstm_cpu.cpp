// CPU loops of the LSTM element-wise kernels: the cell step of generation (OpenMP over batch
// rows, vectorised over the hidden units; the math is branch-free, see lstm_math.h) and the
// keyed dropout masks of training.
#include "lstm/lstm.h"

#include "common/philox.h"
#include "lstm/lstm_math.h"

namespace repap::lstm {

void step_forward_cpu(const float* gx, const float* rec, float* act, const float* c_prev,
                      float* c, float* h, int64_t batch, int64_t H) {
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    const float* x = gx + b * 4 * H;
    const float* r = rec + b * 4 * H;
    float* a = act + b * 4 * H;
    const float* cp = c_prev + b * H;
    float* cb = c + b * H;
    float* hb = h + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const CellForward o = cell_forward(x[j] + r[j], x[H + j] + r[H + j],
                                         x[2 * H + j] + r[2 * H + j],
                                         x[3 * H + j] + r[3 * H + j], cp[j]);
      a[j] = o.i;  // act may alias rec: every element is read before it is written
      a[H + j] = o.f;
      a[2 * H + j] = o.g;
      a[3 * H + j] = o.o;
      cb[j] = o.c;
      hb[j] = o.h;
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
