// A small strict JSON reader for the files a checkpoint carries (config.json, tokenizer.json,
// safetensors headers, model.safetensors.index.json). Hostile input raises moescope::Error with
// the source name and byte offset; nesting depth and size are bounded so it cannot blow the stack.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moescope {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool b = false;
  double num = 0;
  std::string str;                                      // String
  std::vector<Json> arr;                                // Array
  std::vector<std::pair<std::string, Json>> obj;        // Object, in file order

  static Json parse(std::string_view text, const std::string& source);

  bool is_null() const { return kind == Kind::Null; }
  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  bool is_bool() const { return kind == Kind::Bool; }
  // Member lookup; nullptr when absent or when this is not an object.
  const Json* get(std::string_view key) const;
};

}  // namespace moescope
