#pragma once
#include <torch/all.h>
torch::Tensor rms_norm_cpu(const torch::Tensor& input, const torch::Tensor& weight, double eps);
