// GGUF v2/v3 reader (llama.cpp's file format): metadata key/values and tensor views into an mmap.
// Every length, count, offset and dimension is checked against the file before use, so a truncated
// or hostile file raises moescope::Error naming the file, never reads out of bounds.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_view.h"

namespace moescope {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // for arrays
  // Scalars are kept both ways so callers can ask for the natural C++ type.
  double num = 0;
  int64_t i = 0;
  std::string str;
  std::vector<double> nums;        // numeric arrays
  std::vector<std::string> strs;   // string arrays
  bool is_array() const { return type == GgufType::ARRAY; }
  size_t size() const { return elem_type == GgufType::STRING ? strs.size() : nums.size(); }
};

class GgufFile {
 public:
  static std::shared_ptr<GgufFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(const std::string& name) const;

  // Typed metadata access. get_* throws GGUF_MISSING_KEY naming the key and file when absent
  // (unless a default is given) and GGUF_BAD_KEY on a wrong type.
  const GgufValue* find(const std::string& key) const;
  std::string get_str(const std::string& key) const;
  std::string get_str(const std::string& key, const std::string& dflt) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t dflt) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double dflt) const;
  bool get_bool(const std::string& key, bool dflt) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace moescope
