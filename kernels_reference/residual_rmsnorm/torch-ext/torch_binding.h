#pragma once

#include <torch/all.h>

// residual_out = input + residual (rounded to the storage dtype);
// out = residual_out * rsqrt(mean(residual_out^2) + eps) * weight   (last dim = hidden)
void residual_rms_norm(torch::Tensor& out, torch::Tensor& residual_out, const torch::Tensor& input,
                       const torch::Tensor& residual, const torch::Tensor& weight, double eps);
void residual_rms_norm_cpu(torch::Tensor& out, torch::Tensor& residual_out, const torch::Tensor& input,
                           const torch::Tensor& residual, const torch::Tensor& weight, double eps);
