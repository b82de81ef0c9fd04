#pragma once

#include <torch/all.h>

// input: [B, S, D]; scale, shift: [B, D].
// out[b, s, :] = LayerNorm(input[b, s, :]) * (1 + scale[b, :]) + shift[b, :]   (LayerNorm without affine)
void layernorm_adaln(torch::Tensor& out, const torch::Tensor& input, const torch::Tensor& scale,
                     const torch::Tensor& shift, double eps);
void layernorm_adaln_cpu(torch::Tensor& out, const torch::Tensor& input, const torch::Tensor& scale,
                         const torch::Tensor& shift, double eps);
