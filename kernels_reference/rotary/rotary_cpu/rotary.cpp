// NeoX-style rotary embedding CPU twin: same op and signature as the CUDA kernel; tokens
// split over threads with at::parallel_for, fp32 math, cos/sin tables in float32.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

void rotary_embedding_cpu(at::Tensor& out, const at::Tensor& query, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(query.device().is_cpu() && out.device().is_cpu() && cos.device().is_cpu() && sin.device().is_cpu(),
              "rotary_embedding_cpu: tensors must be on the CPU");
  TORCH_CHECK(query.is_contiguous() && out.is_contiguous() && cos.is_contiguous() && sin.is_contiguous(),
              "rotary_embedding_cpu: tensors must be contiguous");
  TORCH_CHECK(query.scalar_type() == out.scalar_type(), "rotary_embedding_cpu: query and out must share a dtype");
  TORCH_CHECK(cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat,
              "rotary_embedding_cpu: cos and sin must be float32");
  TORCH_CHECK(query.dim() == 3, "rotary_embedding_cpu: query must be [tokens, heads, head_dim]");
  TORCH_CHECK(out.sizes() == query.sizes(), "rotary_embedding_cpu: out must have the shape of query");
  const int64_t tokens = query.size(0), heads = query.size(1), head_dim = query.size(2);
  TORCH_CHECK(head_dim % 2 == 0, "rotary_embedding_cpu: head_dim must be even");
  const int64_t half = head_dim / 2;
  TORCH_CHECK(cos.dim() == 2 && cos.size(0) == tokens && cos.size(1) == half && sin.sizes() == cos.sizes(),
              "rotary_embedding_cpu: cos and sin must be [tokens, head_dim / 2]");
  if (tokens == 0 || heads == 0 || half == 0) return;
  KG_DISPATCH_FLOATS(query.scalar_type(), "rotary_embedding_cpu", [&] {
    const scalar_t* q = query.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const float* c = cos.data_ptr<float>();
    const float* s = sin.data_ptr<float>();
    const int64_t grain = std::max<int64_t>(1, 32768 / (heads * head_dim));
    at::parallel_for(0, tokens, grain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* ct = c + t * half;
        const float* st = s + t * half;
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t base = (t * heads + h) * head_dim;
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = static_cast<float>(q[base + i]);
            const float x2 = static_cast<float>(q[base + half + i]);
            o[base + i] = static_cast<scalar_t>(x1 * ct[i] - x2 * st[i]);
            o[base + half + i] = static_cast<scalar_t>(x2 * ct[i] + x1 * st[i]);
          }
        }
      }
    });
  });
}
