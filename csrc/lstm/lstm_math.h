// Per-element math of one LSTM step (gate order i, f, g, o as in torch.nn.LSTM), shared by the
// CPU loops and any CUDA kernel so the two cannot drift.
#pragma once

#include <cstdint>

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

}  // namespace repap::lstm
