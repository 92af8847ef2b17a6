#include "io/json.h"

#include <set>
#include <vector>

#include "core/error.h"

namespace vitqk::io {

namespace {

using json = nlohmann::json;

// nlohmann's DOM builder, checking nesting and keys as it goes, so a hostile document is
// refused before it is built. (Its callback parser could check the same, but rescans an
// object's members at every member's end: quadratic in a header's tensor count.)
class CheckedBuilder {
 public:
  CheckedBuilder(json& result, int max_depth, const std::string& what)
      : dom_(result), max_depth_(max_depth), what_(what) {}

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) { return dom_.number_float(v, s); }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_object(std::size_t n) {
    enter();
    keys_.emplace_back();
    return dom_.start_object(n);
  }
  bool key(json::string_t& k) {
    if (!keys_.back().insert(k).second) fail(what_, " has duplicate key ", json(k).dump());
    return dom_.key(k);
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    enter();
    return dom_.start_array(n);
  }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception& e) {
    fail(what_, " is not valid JSON (", e.what(), ")");
  }

 private:
  void enter() {
    if (++depth_ > max_depth_) fail(what_, " nests JSON deeper than ", max_depth_, " levels");
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  int max_depth_, depth_ = 0;
  const std::string& what_;
  std::vector<std::set<std::string>> keys_;  // of each open object
};

}  // namespace

nlohmann::json parse_json(const std::string& text, int max_depth, const std::string& what) {
  json result;
  CheckedBuilder builder(result, max_depth, what);
  json::sax_parse(text, &builder);
  return result;
}

}  // namespace vitqk::io
