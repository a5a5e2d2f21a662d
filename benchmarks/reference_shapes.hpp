#pragma once
// The convolution shapes of the reference workloads (../shared/ref/README.md, common.py), shared by
// bench_ops (layers) and bench_kernels (the kernels under them).

#include <cstdint>

namespace genmod::bench {

enum class Kind { conv, convT, masked_a, masked_b, linear };

// A layer shape: batch, channels (or features for linear), kernel size, stride, padding and the
// input's height (= width).
struct OpShape {
  const char* name;
  Kind kind;
  std::int64_t batch, cin, cout, k, stride, pad, h;
};

inline constexpr OpShape kConvShapes[] = {
    {"conv_vae.enc1", Kind::conv, 128, 1, 32, 4, 2, 1, 28},
    {"conv_vae.enc2", Kind::conv, 128, 32, 64, 4, 2, 1, 14},
    {"conv_vae.dec1", Kind::convT, 128, 64, 32, 4, 2, 1, 7},
    {"conv_vae.dec2", Kind::convT, 128, 32, 1, 4, 2, 1, 14},
    {"dcgan.G.up1", Kind::convT, 128, 128, 64, 4, 2, 1, 7},
    {"dcgan.G.up2", Kind::convT, 128, 64, 1, 4, 2, 1, 14},
    {"dcgan.D.c1", Kind::conv, 128, 1, 64, 4, 2, 1, 28},
    {"dcgan.D.c2", Kind::conv, 128, 64, 128, 4, 2, 1, 14},
    {"pixelcnn.maskA7", Kind::masked_a, 32, 1, 64, 7, 1, 3, 28},
    {"pixelcnn.maskB3", Kind::masked_b, 32, 64, 64, 3, 1, 1, 28},
    {"pixelcnn.1x1_64", Kind::conv, 32, 64, 64, 1, 1, 0, 28},
    {"pixelcnn.1x1_256", Kind::conv, 32, 64, 256, 1, 1, 0, 28},
};

inline constexpr OpShape kLinearShapes[] = {
    {"mlp_vae.linear784x512", Kind::linear, 128, 784, 512, 0, 0, 0, 0},
    {"realnvp.linear1024x1024", Kind::linear, 128, 1024, 1024, 0, 0, 0, 0},
};

}  // namespace genmod::bench
