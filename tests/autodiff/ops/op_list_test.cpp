// Every differentiable op has first- and second-order gradient checks: the public functions of
// include/genmod/autodiff/ops/*.hpp that return a Var must all be in op_list.hpp, and each entry's
// test case must call its op inside GENMOD_CHECK_GRADIENTS (which runs check_gradients and
// check_second_order in double). The sources are read from the tree this file was compiled from.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "autodiff/ops/op_list.hpp"

namespace autodiff_ops_op_list_test {

namespace fs = std::filesystem;

namespace {

// tests/autodiff/ops/op_list_test.cpp -> the repository root (relative paths: the compiler's
// working directory, which is the root when compiled by hand as tests/README.md shows).
fs::path repository_root() {
  const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
  return root.empty() ? fs::path(".") : root;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Public op name -> header, from the definitions and declarations at namespace scope that return
// Var<T> or std::vector<Var<T>>, outside `namespace detail` blocks.
std::map<std::string, std::string> ops_in_headers(const fs::path& dir) {
  static const std::regex def(R"(^(?:inline |constexpr )*(?:Var<\w+>|std::vector<Var<\w+>>)\s+([a-z_]\w*)\()");
  static const std::regex detail_open(R"(^namespace (\w+::)*detail \{)");
  static const std::regex detail_close(R"(^\}\s*// namespace (\w+::)*detail)");
  std::map<std::string, std::string> ops;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".hpp") continue;
    std::istringstream lines(read_file(entry.path()));
    bool in_detail = false;
    std::smatch m;
    for (std::string line; std::getline(lines, line);) {
      if (std::regex_search(line, detail_open))
        in_detail = true;
      else if (std::regex_search(line, detail_close))
        in_detail = false;
      else if (!in_detail && std::regex_search(line, m, def))
        ops.emplace(m[1], entry.path().filename().string());
    }
  }
  return ops;
}

// Test case name -> the names called inside its GENMOD_CHECK_GRADIENTS(...) / expect_gradients(...)
// arguments, for every TEST_CASE of every *_test.cpp.
std::map<std::string, std::set<std::string>> gradient_checked_calls(const fs::path& tests) {
  static const std::regex test_case(R"(TEST_CASE\(\s*"((?:[^"\\]|\\.)*)\")");
  static const std::regex call(R"(\b([a-z_]\w*)\s*(?:<[^<>()]*>)?\s*\()");
  std::map<std::string, std::set<std::string>> cases;
  for (const auto& entry : fs::recursive_directory_iterator(tests)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 9 || name.substr(name.size() - 9) != "_test.cpp") continue;
    const std::string src = read_file(entry.path());
    std::vector<std::pair<std::size_t, std::string>> starts;
    for (auto it = std::sregex_iterator(src.begin(), src.end(), test_case); it != std::sregex_iterator(); ++it)
      starts.emplace_back(static_cast<std::size_t>(it->position()), (*it)[1]);
    for (std::size_t i = 0; i < starts.size(); ++i) {
      const std::size_t end = i + 1 < starts.size() ? starts[i + 1].first : src.size();
      const std::string body = src.substr(starts[i].first, end - starts[i].first);
      auto& called = cases[starts[i].second];
      for (const std::string macro : {"GENMOD_CHECK_GRADIENTS(", "expect_gradients("}) {
        for (std::size_t at = body.find(macro); at != std::string::npos; at = body.find(macro, at + 1)) {
          // The macro's arguments: up to the parenthesis that closes the one it opens.
          std::size_t j = at + macro.size();
          for (int depth = 1; j < body.size() && depth > 0; ++j) depth += body[j] == '(' ? 1 : body[j] == ')' ? -1 : 0;
          const std::string args = body.substr(at + macro.size(), j - at - macro.size());
          for (auto it = std::sregex_iterator(args.begin(), args.end(), call); it != std::sregex_iterator(); ++it)
            called.insert((*it)[1]);
        }
      }
    }
  }
  return cases;
}

}  // namespace

TEST_CASE("Every differentiable op is listed with first- and second-order gradient checks", "[ops][gradcheck]") {
  const fs::path root = repository_root();
  const fs::path ops_dir = root / "include" / "genmod" / "autodiff" / "ops";
  INFO("sources read from " << fs::absolute(root).string());
  REQUIRE(fs::is_directory(ops_dir));
  REQUIRE(fs::is_directory(root / "tests"));

  const auto ops = ops_in_headers(ops_dir);
  const auto checked = gradient_checked_calls(root / "tests");
  REQUIRE(ops.size() > 40);  // the scan found the ops (a broken regex must not pass vacuously)

  std::set<std::string> registered;
  for (const auto& tc : Catch::getRegistryHub().getTestCaseRegistry().getAllTests()) registered.insert(tc.name);

  std::string problems;
  std::set<std::string> listed;
  for (const auto& [op, test_case] : genmod::test::kDifferentiableOps) {
    const std::string o(op), t(test_case);
    if (!listed.insert(o).second) problems += "  " + o + ": listed twice\n";
    if (!ops.count(o)) problems += "  " + o + ": listed, but no public op of that name in autodiff/ops/\n";
    const auto c = checked.find(t);
    if (c == checked.end() || !registered.count(t))
      problems += "  " + o + ": test case \"" + t + "\" does not exist\n";
    else if (!c->second.count(o))
      problems += "  " + o + ": test case \"" + t + "\" does not call it inside GENMOD_CHECK_GRADIENTS\n";
  }
  for (const auto& [op, header] : ops)
    if (!listed.count(op))
      problems += "  " + op + " (" + header +
                  "): no entry in tests/autodiff/ops/op_list.hpp; add a GENMOD_CHECK_GRADIENTS of it "
                  "(first and second order, double) to the test mirroring " +
                  header + " and list it\n";
  INFO("ops found in the headers: " << ops.size() << ", listed: " << listed.size() << "\n" << problems);
  CHECK(problems.empty());
}

}  // namespace autodiff_ops_op_list_test
