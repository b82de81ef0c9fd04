// NeoX-style rotary embedding for H100 (sm_90): rotate the two halves of every head.
//   query: [tokens, heads, head_dim]; cos, sin: [tokens, head_dim / 2] (float32)
//   out[t, h, i]        = q[t, h, i] * cos[t, i] - q[t, h, i + half] * sin[t, i]
//   out[t, h, i + half] = q[t, h, i + half] * cos[t, i] + q[t, h, i] * sin[t, i]
// One thread block per token; its threads sweep (head, i) pairs, so consecutive threads
// touch consecutive elements. The token's cos/sin row is staged once in shared memory
// and reused by every head. 16-byte packs of query when half and the pointers allow it.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#define KG_DISPATCH_FLOATS(TYPE, NAME, ...)                               \
  AT_DISPATCH_SWITCH(TYPE, NAME,                                          \
                     AT_DISPATCH_CASE(at::ScalarType::Float, __VA_ARGS__) \
                     AT_DISPATCH_CASE(at::ScalarType::Half, __VA_ARGS__)  \
                     AT_DISPATCH_CASE(at::ScalarType::BFloat16, __VA_ARGS__))

// A named namespace, not an anonymous one: profilers show kernels as `kgref_rotary::...`, which
// tells them apart from PyTorch's own `(anonymous namespace)::` kernels.
namespace kgref_rotary {

constexpr int kVecBytes = 16;
// cos + sin rows in shared memory: 2 * half floats. head_dim <= 4096 keeps it within 16 KB.
constexpr int64_t kMaxHalf = 2048;

template <typename T>
struct alignas(kVecBytes) Pack {
  static constexpr int N = kVecBytes / sizeof(T);
  T v[N];
};

template <typename T, bool kVec>
__global__ void rotary_kernel(T* __restrict__ out, const T* __restrict__ q, const float* __restrict__ cos,
                              const float* __restrict__ sin, int64_t heads, int64_t half) {
  extern __shared__ float cs[];  // [0, half): cos row, [half, 2*half): sin row
  const int64_t t = blockIdx.x;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    cs[i] = cos[t * half + i];
    cs[half + i] = sin[t * half + i];
  }
  __syncthreads();
  const float* c = cs;
  const float* s = cs + half;
  const int64_t head_dim = 2 * half;
  const T* qt = q + t * heads * head_dim;
  T* ot = out + t * heads * head_dim;

  if constexpr (kVec) {
    constexpr int N = Pack<T>::N;
    const int64_t packs_per_half = half / N;
    for (int64_t idx = threadIdx.x; idx < heads * packs_per_half; idx += blockDim.x) {
      const int64_t h = idx / packs_per_half;
      const int64_t i0 = (idx - h * packs_per_half) * N;
      const T* qh = qt + h * head_dim;
      T* oh = ot + h * head_dim;
      const Pack<T> x1 = *reinterpret_cast<const Pack<T>*>(qh + i0);
      const Pack<T> x2 = *reinterpret_cast<const Pack<T>*>(qh + half + i0);
      Pack<T> o1, o2;
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float a = static_cast<float>(x1.v[j]);
        const float b = static_cast<float>(x2.v[j]);
        o1.v[j] = static_cast<T>(a * c[i0 + j] - b * s[i0 + j]);
        o2.v[j] = static_cast<T>(b * c[i0 + j] + a * s[i0 + j]);
      }
      *reinterpret_cast<Pack<T>*>(oh + i0) = o1;
      *reinterpret_cast<Pack<T>*>(oh + half + i0) = o2;
    }
  } else {
    for (int64_t idx = threadIdx.x; idx < heads * half; idx += blockDim.x) {
      const int64_t h = idx / half;
      const int64_t i = idx - h * half;
      const float a = static_cast<float>(qt[h * head_dim + i]);
      const float b = static_cast<float>(qt[h * head_dim + half + i]);
      ot[h * head_dim + i] = static_cast<T>(a * c[i] - b * s[i]);
      ot[h * head_dim + half + i] = static_cast<T>(b * c[i] + a * s[i]);
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % kVecBytes == 0; }

int threads_for(int64_t work_items) {
  const int64_t warps = std::min<int64_t>(16, std::max<int64_t>(1, (work_items + 31) / 32));
  return static_cast<int>(warps * 32);
}

}  // namespace kgref_rotary

using namespace kgref_rotary;

void rotary_embedding(at::Tensor& out, const at::Tensor& query, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(query.is_cuda() && out.is_cuda() && cos.is_cuda() && sin.is_cuda(),
              "rotary_embedding: tensors must be on a CUDA device");
  TORCH_CHECK(query.is_contiguous() && out.is_contiguous() && cos.is_contiguous() && sin.is_contiguous(),
              "rotary_embedding: tensors must be contiguous");
  TORCH_CHECK(query.scalar_type() == out.scalar_type(), "rotary_embedding: query and out must share a dtype");
  TORCH_CHECK(cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat,
              "rotary_embedding: cos and sin must be float32");
  TORCH_CHECK(query.dim() == 3, "rotary_embedding: query must be [tokens, heads, head_dim]");
  TORCH_CHECK(out.sizes() == query.sizes(), "rotary_embedding: out must have the shape of query");
  const int64_t tokens = query.size(0), heads = query.size(1), head_dim = query.size(2);
  TORCH_CHECK(head_dim % 2 == 0, "rotary_embedding: head_dim must be even");
  const int64_t half = head_dim / 2;
  TORCH_CHECK(half <= kMaxHalf, "rotary_embedding: head_dim above ", 2 * kMaxHalf, " is not supported");
  TORCH_CHECK(cos.dim() == 2 && cos.size(0) == tokens && cos.size(1) == half && sin.sizes() == cos.sizes(),
              "rotary_embedding: cos and sin must be [tokens, head_dim / 2]");
  if (tokens == 0 || heads == 0 || half == 0) return;
  TORCH_CHECK(tokens <= std::numeric_limits<int32_t>::max(), "rotary_embedding: too many tokens for one launch");

  const at::cuda::OptionalCUDAGuard device_guard(device_of(query));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const size_t smem = static_cast<size_t>(2 * half) * sizeof(float);
  KG_DISPATCH_FLOATS(query.scalar_type(), "rotary_embedding", [&] {
    constexpr int N = Pack<scalar_t>::N;
    const bool vec = half % N == 0 && aligned16(query.data_ptr()) && aligned16(out.data_ptr());
    if (vec) {
      rotary_kernel<scalar_t, true><<<static_cast<unsigned>(tokens), threads_for(heads * half / N), smem, stream>>>(
          out.data_ptr<scalar_t>(), query.data_ptr<scalar_t>(), cos.data_ptr<float>(), sin.data_ptr<float>(),
          heads, half);
    } else {
      rotary_kernel<scalar_t, false><<<static_cast<unsigned>(tokens), threads_for(heads * half), smem, stream>>>(
          out.data_ptr<scalar_t>(), query.data_ptr<scalar_t>(), cos.data_ptr<float>(), sin.data_ptr<float>(),
          heads, half);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}
