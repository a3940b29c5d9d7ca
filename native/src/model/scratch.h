// Working memory of the forward pass, kept from one call to the next (one per Session).
//
// Buffers are taken in stack order inside a Scratch::Scope and handed back when the scope ends.
// After the first decoded token a decode step takes only memory it already has (no malloc, no
// page faults), and a prefill reuses mapped pages: a fresh std::vector of a few MB is new zeroed
// pages from the kernel every time (3 % of a 512-token prefill was page faults and memset).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace moescope {

class Scratch {
 public:
  // n uninitialised elements, 64-byte aligned.
  template <class T>
  T* take(size_t n) {
    return static_cast<T*>(take_bytes(n * sizeof(T)));
  }
  template <class T>
  T* zeros(size_t n) {
    T* p = take<T>(n);
    std::memset(p, 0, n * sizeof(T));
    return p;
  }

  // Everything taken while a Scope lives is given back when it ends.
  class Scope {
   public:
    explicit Scope(Scratch& s) : s_(s), block_(s.block_), used_(s.used_) {}
    ~Scope() { s_.release(block_, used_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Scratch& s_;
    size_t block_, used_;
  };

 private:
  static constexpr size_t kAlign = 64;
  struct Block {
    std::unique_ptr<uint8_t[]> mem;
    uint8_t* base;  // mem rounded up to kAlign
    size_t size;
  };

  void* take_bytes(size_t bytes) {
    bytes = (bytes + kAlign - 1) / kAlign * kAlign;
    for (;; block_++, used_ = 0) {  // a block too full for this buffer keeps its rest unused
      if (block_ == blocks_.size()) add_block(std::max(bytes, blocks_.empty() ? size_t(1) << 20 : 2 * blocks_.back().size));
      Block& b = blocks_[block_];
      if (used_ + bytes <= b.size) {
        void* p = b.base + used_;
        used_ += bytes;
        return p;
      }
    }
  }

  void add_block(size_t size) {
    Block b;
    b.mem.reset(new uint8_t[size + kAlign]);
    b.base = b.mem.get() + (kAlign - (uintptr_t)b.mem.get() % kAlign) % kAlign;
    b.size = size;
    blocks_.push_back(std::move(b));
  }

  void release(size_t block, size_t used) {
    block_ = block;
    used_ = used;
    // All given back after growing into several blocks: one block of their total size from now on.
    if (block == 0 && used == 0 && blocks_.size() > 1) {
      size_t total = 0;
      for (auto& b : blocks_) total += b.size;
      blocks_.clear();
      add_block(total);
    }
  }

  std::vector<Block> blocks_;
  size_t block_ = 0, used_ = 0;
};

}  // namespace moescope
