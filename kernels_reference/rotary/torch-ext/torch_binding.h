#pragma once

#include <torch/all.h>

// NeoX-style rotary embedding (rotate the two halves of each head):
// query: [tokens, heads, head_dim]; cos, sin: [tokens, head_dim / 2] (float32).
// out[t, h, i]        = q[t, h, i] * cos[t, i] - q[t, h, i + half] * sin[t, i]
// out[t, h, i + half] = q[t, h, i + half] * cos[t, i] + q[t, h, i] * sin[t, i]
void rotary_embedding(torch::Tensor& out, const torch::Tensor& query, const torch::Tensor& cos,
                      const torch::Tensor& sin);
void rotary_embedding_cpu(torch::Tensor& out, const torch::Tensor& query, const torch::Tensor& cos,
                          const torch::Tensor& sin);
