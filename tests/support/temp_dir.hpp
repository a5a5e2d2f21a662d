#pragma once
// A directory under the system's temporary directory, unique per process and instance, removed
// with everything in it when the object goes out of scope.

#include <unistd.h>

#include <filesystem>
#include <string>

namespace genmod::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "genmod_test") {
    static int n = 0;
    path =
        std::filesystem::temp_directory_path() / (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace genmod::test
