// Which x86 instruction-set extensions the CPU kernels were compiled to use, and whether this
// CPU has them. A build tuned with -march=native on one machine dies with SIGILL on an older
// one; instead, the module refuses to import with a message that says what is missing.
#pragma once

#include <string>

namespace repap {

/// Names of the extensions the kernels need and this CPU lacks ("" when it can run them).
/// Compiled without -march, so it runs on any x86-64 CPU.
std::string missing_cpu_features();

/// Names of the extensions the kernels were compiled to use (space-separated).
std::string kernel_cpu_features();

}  // namespace repap
