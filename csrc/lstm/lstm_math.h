// Per-element math of one LSTM step (gate order i, f, g, o as in torch.nn.LSTM), shared by the
// CPU loops and any CUDA kernel so the two cannot drift.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/host_device.h"
#include "projection/projection_math.h"

namespace repap::lstm {

/// 1 / (1 + exp(-x)) without overflow: exp of a non-positive argument only.
REPAP_HD float sigmoid(float x) {
  const float e = projection::exp_nonpositive(x < 0.0f ? x : -x);
  const float s = 1.0f / (1.0f + e);
  return x < 0.0f ? e * s : s;
}

/// tanh(x) = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|) <= 1.
REPAP_HD float tanh_(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float e = projection::exp_nonpositive(-2.0f * ax);
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}

/// bfloat16 (the high half of a float32) to float32 and back, rounding to nearest even.
REPAP_HD float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

REPAP_HD uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

/// Activations (i, f, g, o) of the pre-activations, new cell state and output.
struct CellForward {
  float i, f, g, o, c, h;
};

REPAP_HD CellForward cell_forward(float ai, float af, float ag, float ao, float c_prev) {
  CellForward r;
  r.i = sigmoid(ai);
  r.f = sigmoid(af);
  r.g = tanh_(ag);
  r.o = sigmoid(ao);
  r.c = r.f * c_prev + r.i * r.g;
  r.h = r.o * tanh_(r.c);
  return r;
}

/// Gradients of the pre-activations and of c_prev, given dL/dh and dL/dc of this step.
struct CellBackward {
  float di, df, dg, do_, dc_prev;
};

REPAP_HD CellBackward cell_backward(float i, float f, float g, float o, float c, float c_prev,
                                    float dh, float dc) {
  const float tc = tanh_(c);
  const float dct = dc + dh * o * (1.0f - tc * tc);
  CellBackward r;
  r.di = dct * g * i * (1.0f - i);
  r.df = dct * c_prev * f * (1.0f - f);
  r.dg = dct * i * (1.0f - g * g);
  r.do_ = dh * tc * o * (1.0f - o);
  r.dc_prev = dct * f;
  return r;
}

}  // namespace repap::lstm
