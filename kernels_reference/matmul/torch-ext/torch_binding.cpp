#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("matmul(Tensor! out, Tensor a, Tensor b) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("matmul", torch::kCUDA, &matmul);
#endif
#if defined(CPU_KERNEL)
  ops.impl("matmul", torch::kCPU, &matmul_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
