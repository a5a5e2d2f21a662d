// The cvae example's second mode: a conditional VAE on colour images from a folder, conditioned
// on a vector of binary attributes read from a table (CelebA's list_attr_celeba.txt layout or a
// CSV). main.cpp parses the command line; attributes.cpp does the work.
#pragma once

#include <cstdint>
#include <string>

#include <genmod/train/cli.hpp>

/// What the attribute mode reads from the command line besides the shared options.
struct AttributeModeOptions {
  std::string attributes;              ///< --attributes FILE: the attribute table
  std::int64_t image_size = 64;        ///< --image-size S: images resized to S x S (S = 4 * 2^k)
  std::int64_t crop = 0;               ///< --crop C: centre crop to C x C before resizing (0: none)
  std::string select;                  ///< --select A,B,...: attributes to condition on (empty: all)
  std::string show;                    ///< --show A,B,...: attributes of the "add attribute" strips
  std::string cache;                   ///< --cache PATH: the decoded, resized images (.npy)
  double test_fraction = 0.1;          ///< --test-fraction F: the last F of the sorted files are held out
  std::int64_t eval_images = 2000;     ///< --eval-images N: held-out images scored after every epoch
  std::int64_t eval_samples = 2000;    ///< --eval-samples N: conditions of the generated images (held-out rows)
  std::string classifier;              ///< --classifier PATH: the attribute classifier's cache
  std::int64_t classifier_epochs = 4;  ///< --classifier-epochs N: its training, when not cached
  double strength = 1.0;               ///< --strength A: how far "add attribute" moves a code
  double flip = 0.0;                   ///< --flip P: random horizontal flips while training
  std::int64_t latent = 32;            ///< --latent Z
  double lr = 1e-3;                    ///< --lr X
  double beta = 1.0;                   ///< --beta B
  bool learned_prior = true;           ///< --prior learned|standard
  double temperature = 0.7;            ///< --temperature T
  bool every_scale = false;            ///< --decoder-condition every-scale: c joins every upsampling stage
};

/// Trains and evaluates the attribute-conditional VAE; returns the process's exit status.
int run_attribute_mode(const genmod::train::ExampleArgs& args, const AttributeModeOptions& options);
