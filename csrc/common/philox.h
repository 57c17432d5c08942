// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11): the stream is a pure
// function of (key, counter), so results do not depend on threads, batch size or sharding.
// Shared by the CPU loops and the CUDA kernels.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace repap {

struct Philox4 {
  uint32_t v[4];
};

REPAP_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

/// Four 32-bit words for counter (c0..c3) under the 64-bit key (k0, k1).
REPAP_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                               uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(0xD2511F53u, c0, hi0, lo0);
    mulhilo32(0xCD9E8D57u, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

/// Uniform float in [0, 1) from the top 24 bits of a word.
REPAP_HD float uniform01(uint32_t word) { return static_cast<float>(word >> 8) * 0x1.0p-24f; }

}  // namespace repap
