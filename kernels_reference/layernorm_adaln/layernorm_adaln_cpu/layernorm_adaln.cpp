// LayerNorm + AdaLN modulation CPU twin: same op and signature as the CUDA kernel; rows
// split over threads with at::parallel_for; mean and variance in two passes, all fp32.
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

void layernorm_adaln_cpu(at::Tensor& out, const at::Tensor& input, const at::Tensor& scale,
                         const at::Tensor& shift, double eps) {
  TORCH_CHECK(input.device().is_cpu() && out.device().is_cpu() && scale.device().is_cpu() && shift.device().is_cpu(),
              "layernorm_adaln_cpu: tensors must be on the CPU");
  TORCH_CHECK(input.is_contiguous() && out.is_contiguous() && scale.is_contiguous() && shift.is_contiguous(),
              "layernorm_adaln_cpu: tensors must be contiguous");
  TORCH_CHECK(input.scalar_type() == out.scalar_type() && input.scalar_type() == scale.scalar_type() &&
                  input.scalar_type() == shift.scalar_type(),
              "layernorm_adaln_cpu: all tensors must share a dtype");
  TORCH_CHECK(input.dim() == 3, "layernorm_adaln_cpu: input must be [B, S, D]");
  TORCH_CHECK(out.sizes() == input.sizes(), "layernorm_adaln_cpu: out must have the shape of input");
  const int64_t batch = input.size(0), seq = input.size(1), dim = input.size(2);
  TORCH_CHECK(scale.dim() == 2 && scale.size(0) == batch && scale.size(1) == dim,
              "layernorm_adaln_cpu: scale must be [B, D]");
  TORCH_CHECK(shift.sizes() == scale.sizes(), "layernorm_adaln_cpu: shift must be [B, D]");
  const int64_t rows = batch * seq;
  if (rows == 0 || dim == 0) return;
  const float feps = static_cast<float>(eps);
  KG_DISPATCH_FLOATS(input.scalar_type(), "layernorm_adaln_cpu", [&] {
    const scalar_t* x = input.data_ptr<scalar_t>();
    const scalar_t* sc = scale.data_ptr<scalar_t>();
    const scalar_t* sh = shift.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 32768 / dim);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* xr = x + r * dim;
        const scalar_t* scr = sc + (r / seq) * dim;
        const scalar_t* shr = sh + (r / seq) * dim;
        scalar_t* yr = y + r * dim;
        float sum = 0.f;
        for (int64_t i = 0; i < dim; ++i) sum += static_cast<float>(xr[i]);
        const float mean = sum / static_cast<float>(dim);
        float sq = 0.f;
        for (int64_t i = 0; i < dim; ++i) {
          const float c = static_cast<float>(xr[i]) - mean;
          sq += c * c;
        }
        const float rstd = 1.f / std::sqrt(sq / static_cast<float>(dim) + feps);
        for (int64_t i = 0; i < dim; ++i) {
          const float n = (static_cast<float>(xr[i]) - mean) * rstd;
          yr[i] = static_cast<scalar_t>(n * (1.f + static_cast<float>(scr[i])) + static_cast<float>(shr[i]));
        }
      }
    });
  });
}
