#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace moescope {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MOESCOPE_CHECK(fd >= 0, "FILE_OPEN", "%s: cannot open: %s", path.c_str(), strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("FILE_OPEN", strfmt("%s: not a regular file", path.c_str()));
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = (size_t)st.st_size;
  if (f->size_ > 0) {
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail("FILE_MMAP", strfmt("%s: mmap failed: %s", path.c_str(), strerror(e)));
    }
    f->data_ = (const uint8_t*)p;
  }
  ::close(fd);  // the mapping keeps the file alive
  return f;
}

MappedFile::~MappedFile() {
  if (data_) munmap((void*)data_, size_);
}

std::string read_text_file(const std::string& path, size_t max_bytes) {
  auto f = MappedFile::open(path);
  MOESCOPE_CHECK(f->size() <= max_bytes, "FILE_TOO_LARGE", "%s: %zu bytes is more than the %zu allowed for this kind of file",
                 path.c_str(), f->size(), max_bytes);
  return std::string((const char*)f->data(), f->size());
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace moescope
