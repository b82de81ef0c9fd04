// GELU (tanh approximation) CPU twin: same op and signature as the CUDA kernel; the flat
// tensor is split over threads with at::parallel_for, each element computed in fp32.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

namespace {

inline float gelu_tanh_f(float x) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kBeta = 0.044715f;
  return 0.5f * x * (1.f + std::tanh(kAlpha * (x + kBeta * x * x * x)));
}

}  // namespace

void gelu_tanh_cpu(at::Tensor& out, const at::Tensor& input) {
  TORCH_CHECK(input.device().is_cpu() && out.device().is_cpu(), "gelu_tanh_cpu: tensors must be on the CPU");
  TORCH_CHECK(input.is_contiguous() && out.is_contiguous(), "gelu_tanh_cpu: tensors must be contiguous");
  TORCH_CHECK(input.scalar_type() == out.scalar_type(), "gelu_tanh_cpu: input and out must share a dtype");
  TORCH_CHECK(out.sizes() == input.sizes(), "gelu_tanh_cpu: out must have the shape of input");
  const int64_t n = input.numel();
  if (n == 0) return;
  KG_DISPATCH_FLOATS(input.scalar_type(), "gelu_tanh_cpu", [&] {
    const scalar_t* x = input.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) y[i] = static_cast<scalar_t>(gelu_tanh_f(static_cast<float>(x[i])));
    });
  });
}
