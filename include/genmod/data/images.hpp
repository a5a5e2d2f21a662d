#pragma once
/// \file images.hpp
/// Colour images from PNG/JPEG files: decoding and writing (image_file.hpp), transforms
/// (image_ops.hpp), every image of a folder with a cache (image_folder.hpp), training batches
/// (image_loader.hpp). Needs stb_image (link genmod::images); for that reason genmod/genmod.hpp does
/// not include this header.

#include "genmod/data/images/image_file.hpp"
#include "genmod/data/images/image_folder.hpp"
#include "genmod/data/images/image_loader.hpp"
#include "genmod/data/images/image_ops.hpp"
