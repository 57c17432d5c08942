// CPU loops of the fused LSTM element-wise kernels: OpenMP over batch rows, vectorised over
// the hidden units (the math is branch-free, see lstm_math.h).
#include "lstm/lstm.h"

#include <type_traits>

#include "common/philox.h"
#include "lstm/lstm_math.h"

namespace repap::lstm {

namespace {

// The recurrent operands are float32, or bfloat16 when Low; the branch on the type is resolved
// at compile time so that the inner loops vectorise.
template <bool Low>
using Operand = std::conditional_t<Low, uint16_t, float>;

template <bool Low>
REPAP_HD float load(const Operand<Low>* p, int64_t k) {
  if constexpr (Low) {
    return bf16_to_float(p[k]);
  } else {
    return p[k];
  }
}

template <bool Low>
void forward_rows(const float* gx, const void* rec_v, float* act, const float* c_prev, float* c,
                  float* h, uint16_t* h_bf16, int64_t batch, int64_t H) {
  const auto* rec = static_cast<const Operand<Low>*>(rec_v);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    const float* x = gx + b * 4 * H;
    const Operand<Low>* r = rec + b * 4 * H;
    float* a = act + b * 4 * H;
    const float* cp = c_prev + b * H;
    float* cb = c + b * H;
    float* hb = h + b * H;
    uint16_t* hl = Low ? h_bf16 + b * H : nullptr;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const CellForward o = cell_forward(
          x[j] + load<Low>(r, j), x[H + j] + load<Low>(r, H + j),
          x[2 * H + j] + load<Low>(r, 2 * H + j), x[3 * H + j] + load<Low>(r, 3 * H + j), cp[j]);
      a[j] = o.i;
      a[H + j] = o.f;
      a[2 * H + j] = o.g;
      a[3 * H + j] = o.o;
      cb[j] = o.c;
      hb[j] = o.h;
      if constexpr (Low) hl[j] = float_to_bf16(o.h);
    }
  }
}

template <bool Low>
void backward_rows(const float* act, const float* c, const float* c_prev, const float* dh_out,
                   const void* dh_rec_v, float* dc, float* dgates, uint16_t* dgates_bf16,
                   int64_t batch, int64_t H) {
  const auto* dh_rec = static_cast<const Operand<Low>*>(dh_rec_v);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    const float* a = act + b * 4 * H;
    const float* cb = c + b * H;
    const float* cp = c_prev + b * H;
    const float* dho = dh_out + b * H;
    const Operand<Low>* dhr = dh_rec + b * H;
    float* dcb = dc + b * H;
    float* d = dgates + b * 4 * H;
    uint16_t* dl = Low ? dgates_bf16 + b * 4 * H : nullptr;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const float dh = dho[j] + load<Low>(dhr, j);
      const CellBackward r =
          cell_backward(a[j], a[H + j], a[2 * H + j], a[3 * H + j], cb[j], cp[j], dh, dcb[j]);
      d[j] = r.di;
      d[H + j] = r.df;
      d[2 * H + j] = r.dg;
      d[3 * H + j] = r.do_;
      dcb[j] = r.dc_prev;
      if constexpr (Low) {
        dl[j] = float_to_bf16(r.di);
        dl[H + j] = float_to_bf16(r.df);
        dl[2 * H + j] = float_to_bf16(r.dg);
        dl[3 * H + j] = float_to_bf16(r.do_);
      }
    }
  }
}

}  // namespace

void step_forward_cpu(const float* gx, const void* rec, bool low, float* act,
                      const float* c_prev, float* c, float* h, uint16_t* h_bf16, int64_t batch,
                      int64_t hidden) {
  if (low) {
    forward_rows<true>(gx, rec, act, c_prev, c, h, h_bf16, batch, hidden);
  } else {
    forward_rows<false>(gx, rec, act, c_prev, c, h, h_bf16, batch, hidden);
  }
}

void step_backward_cpu(const float* act, const float* c, const float* c_prev, const float* dh_out,
                       const void* dh_rec, bool low, float* dc, float* dgates,
                       uint16_t* dgates_bf16, int64_t batch, int64_t hidden) {
  if (low) {
    backward_rows<true>(act, c, c_prev, dh_out, dh_rec, dc, dgates, dgates_bf16, batch, hidden);
  } else {
    backward_rows<false>(act, c, c_prev, dh_out, dh_rec, dc, dgates, dgates_bf16, batch, hidden);
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
