// Compiled for baseline x86-64: checks the CPU before any kernel code runs.
#include "common/isa.h"

#include <cstdint>

namespace repap {
namespace isa {
uint32_t kernel_features();  // common/isa_kernel.cpp, built with the kernels' flags
}  // namespace isa

namespace {

struct Named {
  uint32_t bit;
  const char* name;
  bool (*present)();
};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define REPAP_CPU_HAS(name) [] { return __builtin_cpu_supports(name) > 0; }
#else
#define REPAP_CPU_HAS(name) [] { return true; }  // only x86 builds set these bits
#endif

const Named kFeatures[] = {
    {1u << 0, "avx", REPAP_CPU_HAS("avx")},
    {1u << 1, "avx2", REPAP_CPU_HAS("avx2")},
    {1u << 2, "fma", REPAP_CPU_HAS("fma")},
    {1u << 3, "bmi", REPAP_CPU_HAS("bmi")},
    {1u << 4, "bmi2", REPAP_CPU_HAS("bmi2")},
    {1u << 5, "f16c", REPAP_CPU_HAS("f16c")},
    {1u << 6, "avx512f", REPAP_CPU_HAS("avx512f")},
    {1u << 7, "avx512bw", REPAP_CPU_HAS("avx512bw")},
    {1u << 8, "avx512vl", REPAP_CPU_HAS("avx512vl")},
    {1u << 9, "avx512dq", REPAP_CPU_HAS("avx512dq")},
    {1u << 10, "avx512cd", REPAP_CPU_HAS("avx512cd")},
    {1u << 11, "avx512bf16", REPAP_CPU_HAS("avx512bf16")},
    {1u << 12, "avx512vnni", REPAP_CPU_HAS("avx512vnni")},
    {1u << 13, "avx512vbmi", REPAP_CPU_HAS("avx512vbmi")},
    {1u << 14, "avx512vbmi2", REPAP_CPU_HAS("avx512vbmi2")},
    {1u << 15, "avx512ifma", REPAP_CPU_HAS("avx512ifma")},
};

std::string names(bool only_missing) {
  const uint32_t need = isa::kernel_features();
  std::string out;
  for (const Named& f : kFeatures) {
    if (!(need & f.bit) || (only_missing && f.present())) continue;
    if (!out.empty()) out += ' ';
    out += f.name;
  }
  return out;
}

}  // namespace

std::string missing_cpu_features() { return names(true); }
std::string kernel_cpu_features() { return names(false); }

}  // namespace repap
