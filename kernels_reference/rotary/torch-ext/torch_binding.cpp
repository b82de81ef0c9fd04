#include <torch/library.h>

#include "registration.h"
#include "torch_binding.h"

TORCH_LIBRARY_EXPAND(TORCH_EXTENSION_NAME, ops) {
  ops.def("rotary_embedding(Tensor! out, Tensor query, Tensor cos, Tensor sin) -> ()");
#if defined(CUDA_KERNEL)
  ops.impl("rotary_embedding", torch::kCUDA, &rotary_embedding);
#endif
#if defined(CPU_KERNEL)
  ops.impl("rotary_embedding", torch::kCPU, &rotary_embedding_cpu);
#endif
}

REGISTER_EXTENSION(TORCH_EXTENSION_NAME)
