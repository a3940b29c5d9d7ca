// Safetensors reader: one file, or a sharded checkpoint through model.safetensors.index.json.
// Tensors are views into the mmapped shards; shapes are converted to ggml `ne` order.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/tensor_view.h"

namespace moescope {

class SafetensorsSet {
 public:
  // `path` is a .safetensors file, a model.safetensors.index.json, or a folder holding either.
  static std::shared_ptr<SafetensorsSet> open(const std::string& path);

  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(const std::string& name) const;
  const std::string& source() const { return source_; }
  // __metadata__ of the first shard (string -> string).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  void add_file(const std::string& path, const std::vector<std::string>* expected_names);
  std::string source_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// safetensors dtype string ("BF16") -> ggml type id; false when moescope cannot read the dtype.
bool safetensors_dtype_to_ggml(const std::string& dtype, uint32_t& type_id);

}  // namespace moescope
