#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("gelu_tanh(Tensor! out, Tensor input) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("gelu_tanh", torch::kCUDA, &gelu_tanh);
#endif
#if defined(CPU_KERNEL)
  ops.impl("gelu_tanh", torch::kCPU, &gelu_tanh_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
