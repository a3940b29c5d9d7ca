// A tensor as stored in a checkpoint file: a typed view into a memory map, never a copy.
// Dimensions are ggml-style `ne` (fastest-varying first): a PyTorch [out, in] matrix has ne = {in, out}.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"

namespace moescope {

struct TensorView {
  std::string name;
  uint32_t type = 0;            // ggml type id (ops/quant.h GgmlType)
  std::vector<int64_t> ne;      // fastest first
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<MappedFile> file;  // keeps the map alive; file->path() names it in errors

  int64_t numel() const {
    int64_t n = 1;
    for (auto d : ne) n *= d;
    return n;
  }
  std::string shape_str() const {
    std::string s = "[";
    for (size_t i = 0; i < ne.size(); i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
  }
};

}  // namespace moescope
