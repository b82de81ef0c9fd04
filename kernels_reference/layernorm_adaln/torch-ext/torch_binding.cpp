#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("layernorm_adaln(Tensor! out, Tensor input, Tensor scale, Tensor shift, float eps) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("layernorm_adaln", torch::kCUDA, &layernorm_adaln);
#endif
#if defined(CPU_KERNEL)
  ops.impl("layernorm_adaln", torch::kCPU, &layernorm_adaln_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
