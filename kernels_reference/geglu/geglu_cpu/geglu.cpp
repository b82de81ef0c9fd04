// GEGLU CPU twin: same op and signature as the CUDA kernel; rows split over threads with
// at::parallel_for, each element computed in fp32.
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

inline float gelu_tanh_f(float x) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kBeta = 0.044715f;
  return 0.5f * x * (1.f + std::tanh(kAlpha * (x + kBeta * x * x * x)));
}

}  // namespace

void geglu_cpu(at::Tensor& out, const at::Tensor& input) {
  TORCH_CHECK(input.device().is_cpu() && out.device().is_cpu(), "geglu_cpu: tensors must be on the CPU");
  TORCH_CHECK(input.is_contiguous() && out.is_contiguous(), "geglu_cpu: tensors must be contiguous");
  TORCH_CHECK(input.scalar_type() == out.scalar_type(), "geglu_cpu: input and out must share a dtype");
  TORCH_CHECK(input.dim() >= 1 && input.size(-1) % 2 == 0, "geglu_cpu: input's last dimension must be even");
  const int64_t d = input.size(-1) / 2;
  auto expected = input.sizes().vec();
  expected.back() = d;
  TORCH_CHECK(out.sizes() == at::IntArrayRef(expected), "geglu_cpu: out must have shape [..., d]");
  const int64_t rows = d == 0 ? 0 : out.numel() / d;
  if (rows == 0) return;
  KG_DISPATCH_FLOATS(input.scalar_type(), "geglu_cpu", [&] {
    const scalar_t* x = input.data_ptr<scalar_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    const int64_t grain = std::max<int64_t>(1, 32768 / d);
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* a = x + r * 2 * d;
        const scalar_t* b = a + d;
        scalar_t* o = y + r * d;
        for (int64_t i = 0; i < d; ++i)
          o[i] = static_cast<scalar_t>(gelu_tanh_f(static_cast<float>(a[i])) * static_cast<float>(b[i]));
      }
    });
  });
}
