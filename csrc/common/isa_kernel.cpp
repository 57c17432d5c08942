// Compiled with the kernels' flags (-march=...): the extensions the compiler may use there,
// read from its predefined macros. Only constants: safe to call on any CPU.
#include <cstdint>

namespace repap::isa {

enum Feature : uint32_t {
  kAvx = 1u << 0, kAvx2 = 1u << 1, kFma = 1u << 2, kBmi = 1u << 3, kBmi2 = 1u << 4,
  kF16c = 1u << 5, kAvx512f = 1u << 6, kAvx512bw = 1u << 7, kAvx512vl = 1u << 8,
  kAvx512dq = 1u << 9, kAvx512cd = 1u << 10, kAvx512bf16 = 1u << 11, kAvx512vnni = 1u << 12,
  kAvx512vbmi = 1u << 13, kAvx512vbmi2 = 1u << 14, kAvx512ifma = 1u << 15,
};

uint32_t kernel_features() {
  uint32_t f = 0;
#ifdef __AVX__
  f |= kAvx;
#endif
#ifdef __AVX2__
  f |= kAvx2;
#endif
#ifdef __FMA__
  f |= kFma;
#endif
#ifdef __BMI__
  f |= kBmi;
#endif
#ifdef __BMI2__
  f |= kBmi2;
#endif
#ifdef __F16C__
  f |= kF16c;
#endif
#ifdef __AVX512F__
  f |= kAvx512f;
#endif
#ifdef __AVX512BW__
  f |= kAvx512bw;
#endif
#ifdef __AVX512VL__
  f |= kAvx512vl;
#endif
#ifdef __AVX512DQ__
  f |= kAvx512dq;
#endif
#ifdef __AVX512CD__
  f |= kAvx512cd;
#endif
#ifdef __AVX512BF16__
  f |= kAvx512bf16;
#endif
#ifdef __AVX512VNNI__
  f |= kAvx512vnni;
#endif
#ifdef __AVX512VBMI__
  f |= kAvx512vbmi;
#endif
#ifdef __AVX512VBMI2__
  f |= kAvx512vbmi2;
#endif
#ifdef __AVX512IFMA__
  f |= kAvx512ifma;
#endif
  return f;
}

}  // namespace repap::isa
