#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("geglu(Tensor! out, Tensor input) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("geglu", torch::kCUDA, &geglu);
#endif
#if defined(CPU_KERNEL)
  ops.impl("geglu", torch::kCPU, &geglu_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
