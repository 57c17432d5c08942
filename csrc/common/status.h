// Status codes the kernels report for bad input; Python turns them into ValueError.
#pragma once

namespace repap {

/// Bit flags, OR-ed over all inputs of one call.
enum Status : int {
  kOk = 0,
  kNonFinite = 1,     ///< a coordinate is NaN or infinite
  kOutOfRange = 2,    ///< periodic=false and a coordinate is outside [0, 1)
};

}  // namespace repap
