// Fused residual add + RMSNorm CPU twin: same op and signature as the CUDA kernel; rows split
// over threads with at::parallel_for. The sum is rounded to the storage dtype first (it is the
// new residual stream) and the norm is taken of that rounded value, in fp32.
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

void residual_rms_norm_cpu(at::Tensor& out, at::Tensor& residual_out, const at::Tensor& input,
                           const at::Tensor& residual, const at::Tensor& weight, double eps) {
  const at::Tensor* const all[] = {&out, &residual_out, &input, &residual, &weight};
  for (const at::Tensor* t : all) {
    TORCH_CHECK(t->device().is_cpu(), "residual_rms_norm_cpu: tensors must be on the CPU");
    TORCH_CHECK(t->is_contiguous(), "residual_rms_norm_cpu: tensors must be contiguous");
    TORCH_CHECK(t->scalar_type() == input.scalar_type(), "residual_rms_norm_cpu: all tensors must share a dtype");
  }
  TORCH_CHECK(input.dim() >= 1, "residual_rms_norm_cpu: input must have at least one dimension");
  TORCH_CHECK(residual.sizes() == input.sizes() && out.sizes() == input.sizes() &&
                  residual_out.sizes() == input.sizes(),
              "residual_rms_norm_cpu: input, residual, out and residual_out must share a shape");
  const int64_t cols = input.size(-1);
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == cols, "residual_rms_norm_cpu: weight must have shape [hidden]");
  const int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;
  const float feps = static_cast<float>(eps);
  KG_DISPATCH_FLOATS(input.scalar_type(), "residual_rms_norm_cpu", [&] {
    const scalar_t* x = input.data_ptr<scalar_t>();
    const scalar_t* res = residual.data_ptr<scalar_t>();
    const scalar_t* w = weight.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    scalar_t* res_out = residual_out.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 32768 / cols);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t base = r * cols;
        float sumsq = 0.f;
        for (int64_t i = 0; i < cols; ++i) {
          const scalar_t h = static_cast<scalar_t>(static_cast<float>(x[base + i]) + static_cast<float>(res[base + i]));
          res_out[base + i] = h;
          const float f = static_cast<float>(h);
          sumsq += f * f;
        }
        const float rstd = 1.f / std::sqrt(sumsq / static_cast<float>(cols) + feps);
        for (int64_t i = 0; i < cols; ++i)
          y[base + i] = static_cast<scalar_t>(static_cast<float>(res_out[base + i]) * rstd * static_cast<float>(w[i]));
      }
    });
  });
}
