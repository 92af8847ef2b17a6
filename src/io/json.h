#pragma once
// JSON that comes from files. Parsed with a bound on nesting, so that no recursive copy,
// comparison or dump of the result can exhaust the stack (nlohmann recurses), and refusing
// duplicate keys, which nlohmann would silently resolve to the last.
#include <nlohmann/json.hpp>
#include <string>

namespace vitqk::io {

// Throws Error "<what> is not valid JSON (...)", "<what> nests JSON deeper than <max_depth>
// levels" (the outermost array or object is level 1) or "<what> has duplicate key ...".
nlohmann::json parse_json(const std::string& text, int max_depth, const std::string& what);

}  // namespace vitqk::io
