// Marks functions shared by the CPU loops and the CUDA kernels.
#pragma once

#if defined(__CUDACC__)
#define REPAP_HD __host__ __device__ __forceinline__
#else
#define REPAP_HD inline
#endif
