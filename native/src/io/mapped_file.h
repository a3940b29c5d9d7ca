// A read-only memory map of a whole file. Weights are used in place from the map (never copied);
// the map lives as long as any model that points into it (shared_ptr).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace moescope {

class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) text file, e.g. config.json; refuses files over max_bytes.
std::string read_text_file(const std::string& path, size_t max_bytes = 256u << 20);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

}  // namespace moescope
