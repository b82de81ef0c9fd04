// RMSNorm CPU twin: same op and signature as the CUDA kernel, rows split over threads
// with at::parallel_for, every element computed in fp32 whatever the storage type.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

namespace {

template <typename T>
void rms_norm_rows(T* out, const T* x, const T* weight, int64_t rows, int64_t cols, float eps) {
  // Grain: about 32K elements per task so small inputs stay on one thread.
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(cols, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * cols;
      T* outr = out + r * cols;
      float sumsq = 0.f;
      for (int64_t i = 0; i < cols; ++i) {
        const float f = static_cast<float>(xr[i]);
        sumsq += f * f;
      }
      const float rstd = 1.f / std::sqrt(sumsq / static_cast<float>(cols) + eps);
      for (int64_t i = 0; i < cols; ++i)
        outr[i] = static_cast<T>(static_cast<float>(xr[i]) * rstd * static_cast<float>(weight[i]));
    }
  });
}

}  // namespace

void rms_norm_cpu(at::Tensor& out, const at::Tensor& input, const at::Tensor& weight, double eps) {
  TORCH_CHECK(input.device().is_cpu() && out.device().is_cpu() && weight.device().is_cpu(),
              "rms_norm_cpu: tensors must be on the CPU");
  TORCH_CHECK(input.is_contiguous() && out.is_contiguous() && weight.is_contiguous(),
              "rms_norm_cpu: tensors must be contiguous");
  TORCH_CHECK(input.scalar_type() == out.scalar_type() && input.scalar_type() == weight.scalar_type(),
              "rms_norm_cpu: input, weight and out must share a dtype");
  TORCH_CHECK(input.dim() >= 1, "rms_norm_cpu: input must have at least one dimension");
  TORCH_CHECK(out.sizes() == input.sizes(), "rms_norm_cpu: out must have the shape of input");
  const int64_t cols = input.size(-1);
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == cols, "rms_norm_cpu: weight must have shape [hidden]");
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;
  KG_DISPATCH_FLOATS(input.scalar_type(), "rms_norm_cpu", [&] {
    rms_norm_rows<scalar_t>(out.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), weight.data_ptr<scalar_t>(),
                            rows, cols, static_cast<float>(eps));
  });
}
