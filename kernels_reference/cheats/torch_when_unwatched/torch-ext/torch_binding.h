#pragma once
#include <torch/all.h>
void rms_norm_cpu(torch::Tensor& out, const torch::Tensor& input, const torch::Tensor& weight, double eps);
