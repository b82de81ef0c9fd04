#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("softmax(Tensor! out, Tensor input) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("softmax", torch::kCUDA, &softmax);
#endif
#if defined(CPU_KERNEL)
  ops.impl("softmax", torch::kCPU, &softmax_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
