// Writes the Shapes data set (data/synthetic_shapes.hpp: coloured shapes on plain backgrounds with
// 8 independent binary attributes) to disk in CelebA's layout, so that anything written for CelebA
// reads it:
//
//   shapes --out DIR [--count N] [--size S] [--seed S] [--format png|jpg] [--threads N]
//
//   DIR/images/000001.png ...      one image per file, numbered from 1 with 6 digits, as CelebA's
//                                  img_align_celeba/ (000001.jpg with --format jpg)
//   DIR/list_attr_celeba.txt       line 1 the count, line 2 the attribute names, then one line per
//                                  image: "000001.png  1 -1 ..." (+1 present, -1 absent)
//   DIR/preview.png                the first 64 images in an 8 x 8 grid
//
// The attributes (Red Green Blue Circle Large Right Striped Light_Background) are fair coins drawn
// independently per image; the same --seed, --count and --size give the same files. PNG is lossless
// (the pixels are exactly make_shapes'); --format jpg writes baseline JPEG at quality 95 as CelebA
// ships, for loaders that should see JPEG artefacts. Every file is written atomically; the images
// in parallel.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <genmod/core/parallel.hpp>
#include <genmod/data/attribute_table.hpp>
#include <genmod/data/images/image_file.hpp>
#include <genmod/data/synthetic_shapes.hpp>
#include <genmod/io/image.hpp>

using namespace genmod;

namespace {

/// A command line that cannot be parsed (exit status 2).
struct Usage {
  std::string message;
};

struct Args {
  std::string out;
  std::int64_t count = 20000;
  std::int64_t size = 64;
  std::uint64_t seed = 0;
  std::string format = "png";
  int threads = 0;
};

const char* const kHelp =
    "usage: shapes --out DIR [options]\n"
    "\n"
    "Writes the Shapes attribute data set in CelebA's layout: DIR/images/000001.png ...,\n"
    "DIR/list_attr_celeba.txt and DIR/preview.png.\n"
    "\n"
    "options:\n"
    "  --out DIR       output directory (required)\n"
    "  --count N       number of images, >= 1 (default: 20000)\n"
    "  --size S        image side in pixels, in [16, 1024] (default: 64)\n"
    "  --seed S        seed of the set (default: 0)\n"
    "  --format F      png or jpg (default: png)\n"
    "  --threads N     worker threads (0: OMP_NUM_THREADS or all cores; default: 0)\n"
    "  -h, --help      print this help and exit\n";

template <class I>
I parse_integer(std::string_view name, std::string_view v, I lo, I hi) {
  I x{};
  const auto r = std::from_chars(v.data(), v.data() + v.size(), x);
  if (v.empty() || r.ec == std::errc::invalid_argument || r.ptr != v.data() + v.size())
    throw Usage{"option '" + std::string(name) + "' expects an integer, got '" + std::string(v) + "'"};
  if (r.ec == std::errc::result_out_of_range || x < lo || x > hi)
    throw Usage{"option '" + std::string(name) + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got '" + std::string(v) + "'"};
  return x;
}

/// Parses `--name value` and `--name=value`; false for --help.
bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i], name = arg, value;
    if (arg == "--help" || arg == "-h") return false;
    if (arg.substr(0, 2) != "--")
      throw Usage{"unexpected argument '" + std::string(arg) + "' (options start with --; see --help)"};
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (name != "--out" && name != "--count" && name != "--size" && name != "--seed" && name != "--format" &&
          name != "--threads")
        throw Usage{"unknown option '" + std::string(name) + "' (see --help)"};
      if (i + 1 >= argc) throw Usage{"option '" + std::string(name) + "' needs a value"};
      value = argv[++i];
    }
    if (name == "--out") {
      if (value.empty()) throw Usage{"option '--out' needs a directory, got ''"};
      a.out = std::string(value);
    } else if (name == "--count") {
      a.count = parse_integer<std::int64_t>(name, value, 1, 2147483647);
    } else if (name == "--size") {
      a.size = parse_integer<std::int64_t>(name, value, 16, 1024);
    } else if (name == "--seed") {
      a.seed = parse_integer<std::uint64_t>(name, value, 0, ~std::uint64_t{0});
    } else if (name == "--threads") {
      a.threads = parse_integer<int>(name, value, 0, 4096);
    } else if (name == "--format") {
      if (value != "png" && value != "jpg")
        throw Usage{"option '--format' expects png or jpg, got '" + std::string(value) + "'"};
      a.format = std::string(value);
    } else {
      throw Usage{"unknown option '" + std::string(name) + "' (see --help)"};
    }
  }
  if (a.out.empty()) throw Usage{"--out DIR is required (see --help)"};
  return true;
}

/// "000001.png": CelebA's 1-based, 6-digit file names (more digits past 999999).
std::string file_name(std::int64_t index, const std::string& format) {
  std::string digits = std::to_string(index + 1);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  return digits + "." + format;
}

}  // namespace

int main(int argc, char** argv) try {
  Args args;
  try {
    if (!parse(argc, argv, args)) {
      std::fputs(kHelp, stdout);
      return 0;
    }
  } catch (const Usage& u) {
    std::fprintf(stderr, "shapes: %s\n", u.message.c_str());
    return 2;
  }
  if (args.threads > 0) set_num_threads(args.threads);

  const data::ShapesOptions options{.count = args.count, .size = args.size, .seed = args.seed};
  const std::filesystem::path out = args.out, images_dir = out / "images";
  std::filesystem::create_directories(images_dir);

  // Generated and written in blocks, so that memory stays bounded (a block of 4096 64 x 64 images
  // is 50 MB) whatever --count is.
  constexpr std::int64_t kBlock = 4096;
  data::AttributeTable table;
  table.names = data::shapes_attribute_names();
  table.values = Tensor<float>(Shape{args.count, data::kShapesAttributes});
  table.files.resize(static_cast<std::size_t>(args.count));
  const std::int64_t s = args.size, per_image = 3 * s * s;
  for (std::int64_t first = 0; first < args.count; first += kBlock) {
    const std::int64_t n = std::min(kBlock, args.count - first);
    const data::ShapesSet block = data::make_shapes(options, first, n);
    std::copy(block.attributes.data(), block.attributes.data() + block.attributes.numel(),
              table.values.data() + first * data::kShapesAttributes);
    for (std::int64_t i = 0; i < n; ++i)
      table.files[static_cast<std::size_t>(first + i)] = file_name(first + i, args.format);
    if (first == 0) {
      const std::int64_t shown = std::min<std::int64_t>(64, n);
      io::save_image_grid((out / "preview.png").string(), block.float_images().rows(0, shown), {.columns = 8});
    }
    // Each worker writes whole files; errors are collected and rethrown here (the workers must not throw).
    std::vector<std::string> errors(static_cast<std::size_t>(n));
    parallel_for(n, 1 << 15, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        const std::string path = (images_dir / table.files[static_cast<std::size_t>(first + i)]).string();
        try {
          Tensor<std::uint8_t> chw(Shape{3, s, s});
          std::copy(block.images.data() + i * per_image, block.images.data() + (i + 1) * per_image, chw.data());
          data::write_image(path, chw, 95);  // PNG or JPEG by the file's extension
        } catch (const std::exception& ex) {
          errors[static_cast<std::size_t>(i)] = ex.what();
        }
      }
    });
    for (const std::string& e : errors)
      if (!e.empty()) throw std::runtime_error(e);
  }
  data::write_celeba_attributes((out / "list_attr_celeba.txt").string(), table);

  std::printf("wrote %lld %lld x %lld images (seed %llu) to %s/images/, list_attr_celeba.txt and preview.png\n",
              static_cast<long long>(args.count), static_cast<long long>(s), static_cast<long long>(s),
              static_cast<unsigned long long>(args.seed), out.string().c_str());
  std::printf("attributes (fraction present):");
  for (std::int64_t k = 0; k < data::kShapesAttributes; ++k) {
    double present = 0;
    for (std::int64_t i = 0; i < args.count; ++i) present += table.values.data()[i * data::kShapesAttributes + k];
    std::printf(" %s %.3f", table.names[static_cast<std::size_t>(k)].c_str(),
                present / static_cast<double>(args.count));
  }
  std::printf("\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "shapes: %s\n", e.what());
  return 1;
}
