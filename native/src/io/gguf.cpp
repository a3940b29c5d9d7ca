#include "io/gguf.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "ops/quant.h"

namespace moescope {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxStringBytes = 64ull << 20;
constexpr int kMaxDims = 4;

// Bounds-checked little-endian cursor over the mapped header.
struct Cursor {
  const uint8_t* base;
  size_t size;
  size_t pos = 0;
  const std::string& path;

  [[noreturn]] void truncated(const char* what) const {
    fail("GGUF_TRUNCATED", strfmt("%s: file ends inside the header while reading %s (at byte %zu of %zu)",
                                  path.c_str(), what, pos, size));
  }
  template <typename T>
  T read(const char* what) {
    if (size - pos < sizeof(T)) truncated(what);
    T v;
    memcpy(&v, base + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    uint64_t n = read<uint64_t>(what);
    MOESCOPE_CHECK(n <= kMaxStringBytes, "GGUF_BAD_STRING", "%s: %s has an absurd length %llu at byte %zu",
                   path.c_str(), what, (unsigned long long)n, pos - 8);
    if (size - pos < n) truncated(what);
    std::string s((const char*)base + pos, n);
    pos += n;
    return s;
  }
};

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}

void read_scalar(Cursor& c, GgufType t, double& num, int64_t& i) {
  switch (t) {
    case GgufType::UINT8: i = c.read<uint8_t>("a value"); num = (double)i; break;
    case GgufType::INT8: i = c.read<int8_t>("a value"); num = (double)i; break;
    case GgufType::BOOL: i = c.read<uint8_t>("a value") != 0; num = (double)i; break;
    case GgufType::UINT16: i = c.read<uint16_t>("a value"); num = (double)i; break;
    case GgufType::INT16: i = c.read<int16_t>("a value"); num = (double)i; break;
    case GgufType::UINT32: i = c.read<uint32_t>("a value"); num = (double)i; break;
    case GgufType::INT32: i = c.read<int32_t>("a value"); num = (double)i; break;
    case GgufType::FLOAT32: num = c.read<float>("a value"); i = (int64_t)num; break;
    case GgufType::UINT64: { uint64_t u = c.read<uint64_t>("a value"); i = (int64_t)u; num = (double)u; break; }
    case GgufType::INT64: i = c.read<int64_t>("a value"); num = (double)i; break;
    case GgufType::FLOAT64: num = c.read<double>("a value"); i = (int64_t)num; break;
    default: break;
  }
}

GgufValue read_value(Cursor& c, GgufType t, const std::string& key) {
  GgufValue v;
  v.type = t;
  if (t == GgufType::STRING) {
    v.str = c.str(("the value of " + key).c_str());
  } else if (t == GgufType::ARRAY) {
    uint32_t et = c.read<uint32_t>("an array type");
    uint64_t n = c.read<uint64_t>("an array length");
    v.elem_type = (GgufType)et;
    if (v.elem_type == GgufType::STRING) {
      // Each string needs at least its 8-byte length: bound the count by the bytes left.
      MOESCOPE_CHECK(n <= (c.size - c.pos) / 8, "GGUF_BAD_ARRAY", "%s: key %s claims %llu strings, more than the file can hold",
                     c.path.c_str(), key.c_str(), (unsigned long long)n);
      v.strs.reserve(n);
      for (uint64_t k = 0; k < n; k++) v.strs.push_back(c.str(("an element of " + key).c_str()));
    } else {
      size_t es = scalar_size(v.elem_type);
      MOESCOPE_CHECK(es > 0, "GGUF_BAD_TYPE", "%s: key %s is an array of unknown or nested type %u", c.path.c_str(), key.c_str(), et);
      MOESCOPE_CHECK(n <= (c.size - c.pos) / es, "GGUF_BAD_ARRAY", "%s: key %s claims %llu elements, more than the file can hold",
                     c.path.c_str(), key.c_str(), (unsigned long long)n);
      v.nums.resize(n);
      for (uint64_t k = 0; k < n; k++) {
        int64_t iv;
        read_scalar(c, v.elem_type, v.nums[k], iv);
      }
    }
  } else {
    MOESCOPE_CHECK(scalar_size(t) > 0, "GGUF_BAD_TYPE", "%s: key %s has unknown value type %u", c.path.c_str(), key.c_str(), (unsigned)t);
    read_scalar(c, t, v.num, v.i);
  }
  return v;
}

}  // namespace

std::shared_ptr<GgufFile> GgufFile::open(const std::string& path) {
  auto g = std::shared_ptr<GgufFile>(new GgufFile());
  g->file_ = MappedFile::open(path);
  Cursor c{g->file_->data(), g->file_->size(), 0, path};

  uint32_t magic = c.read<uint32_t>("the magic number");
  MOESCOPE_CHECK(magic == kGgufMagic, "GGUF_BAD_MAGIC", "%s: not a GGUF file (magic 0x%08x, expected \"GGUF\")", path.c_str(), magic);
  g->version_ = c.read<uint32_t>("the version");
  MOESCOPE_CHECK(g->version_ == 2 || g->version_ == 3, "GGUF_BAD_VERSION", "%s: GGUF version %u is not supported (2 or 3 expected)",
                 path.c_str(), g->version_);
  uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // A tensor info takes at least 8+4+8+4+8 bytes, a key/value at least 8+4+1.
  MOESCOPE_CHECK(n_tensors <= c.size / 32 && n_kv <= c.size / 13, "GGUF_BAD_COUNT",
                 "%s: header claims %llu tensors and %llu metadata entries, more than a %zu-byte file can hold", path.c_str(),
                 (unsigned long long)n_tensors, (unsigned long long)n_kv, c.size);

  for (uint64_t k = 0; k < n_kv; k++) {
    std::string key = c.str("a metadata key");
    uint32_t t = c.read<uint32_t>("a metadata type");
    MOESCOPE_CHECK(g->kv_.count(key) == 0, "GGUF_DUPLICATE_KEY", "%s: metadata key %s appears twice", path.c_str(), key.c_str());
    g->kv_[key] = read_value(c, (GgufType)t, key);
  }

  uint64_t alignment = 32;
  if (auto a = g->find("general.alignment")) {
    alignment = (uint64_t)a->i;
    MOESCOPE_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0 && alignment <= 4096, "GGUF_BAD_ALIGNMENT",
                   "%s: general.alignment %llu is not a power of two <= 4096", path.c_str(), (unsigned long long)alignment);
  }

  struct RawInfo { std::string name; std::vector<int64_t> ne; uint32_t type; uint64_t offset; };
  std::vector<RawInfo> infos;
  infos.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; k++) {
    RawInfo r;
    r.name = c.str("a tensor name");
    uint32_t nd = c.read<uint32_t>("a tensor's dimension count");
    MOESCOPE_CHECK(nd >= 1 && nd <= kMaxDims, "GGUF_BAD_DIMS", "%s: tensor %s has %u dimensions (1..4 allowed)", path.c_str(), r.name.c_str(), nd);
    for (uint32_t d = 0; d < nd; d++) {
      int64_t v = (int64_t)c.read<uint64_t>("a tensor dimension");
      MOESCOPE_CHECK(v > 0 && v < (1ll << 40), "GGUF_BAD_DIMS", "%s: tensor %s has dimension %lld", path.c_str(), r.name.c_str(), (long long)v);
      r.ne.push_back(v);
    }
    r.type = c.read<uint32_t>("a tensor type");
    r.offset = c.read<uint64_t>("a tensor offset");
    infos.push_back(std::move(r));
  }
  uint64_t data_start = (c.pos + alignment - 1) / alignment * alignment;
  MOESCOPE_CHECK(data_start <= c.size, "GGUF_TRUNCATED", "%s: file ends before the tensor data", path.c_str());

  struct Span { uint64_t begin, end; size_t idx; };
  std::vector<Span> spans;
  for (size_t k = 0; k < infos.size(); k++) {
    auto& r = infos[k];
    const TypeTraits* tt = type_traits(r.type);
    MOESCOPE_CHECK(tt != nullptr, "GGUF_BAD_TYPE", "%s: tensor %s has unknown type id %u", path.c_str(), r.name.c_str(), r.type);
    MOESCOPE_CHECK(r.ne[0] % tt->block_size == 0, "GGUF_BAD_DIMS", "%s: tensor %s: first dimension %lld is not a multiple of the %s block size %lld",
                   path.c_str(), r.name.c_str(), (long long)r.ne[0], tt->name, (long long)tt->block_size);
    // Size with overflow checks: each dim < 2^40 but the product may not be.
    unsigned __int128 n = 1;
    for (auto d : r.ne) n *= (unsigned __int128)d;
    unsigned __int128 bytes = n / (unsigned __int128)tt->block_size * tt->type_size;
    MOESCOPE_CHECK(r.offset % alignment == 0, "GGUF_BAD_OFFSET", "%s: tensor %s offset %llu is not %llu-byte aligned", path.c_str(),
                   r.name.c_str(), (unsigned long long)r.offset, (unsigned long long)alignment);
    MOESCOPE_CHECK(bytes <= (unsigned __int128)(c.size - data_start) && r.offset <= c.size - data_start - (uint64_t)bytes,
                   "GGUF_BAD_OFFSET", "%s: tensor %s (%s, %llu bytes at offset %llu) lies past the end of the file (%zu bytes)",
                   path.c_str(), r.name.c_str(), tt->name, (unsigned long long)bytes, (unsigned long long)r.offset, c.size);
    MOESCOPE_CHECK(g->index_.count(r.name) == 0, "GGUF_DUPLICATE_TENSOR", "%s: tensor %s appears twice", path.c_str(), r.name.c_str());
    TensorView v;
    v.name = r.name;
    v.type = r.type;
    v.ne = r.ne;
    v.data = g->file_->data() + data_start + r.offset;
    v.nbytes = (size_t)bytes;
    v.file = g->file_;
    g->index_[r.name] = g->tensors_.size();
    g->tensors_.push_back(std::move(v));
    spans.push_back({r.offset, r.offset + (uint64_t)bytes, k});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t k = 1; k < spans.size(); k++)
    MOESCOPE_CHECK(spans[k].begin >= spans[k - 1].end, "GGUF_OVERLAP", "%s: tensors %s and %s overlap in the file", path.c_str(),
                   infos[spans[k - 1].idx].name.c_str(), infos[spans[k].idx].name.c_str());
  return g;
}

const TensorView* GgufFile::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {
bool is_numeric(GgufType t) { return t != GgufType::STRING && t != GgufType::ARRAY; }
}  // namespace

std::string GgufFile::get_str(const std::string& key) const {
  auto v = find(key);
  MOESCOPE_CHECK(v, "GGUF_MISSING_KEY", "%s: metadata key %s is missing", path().c_str(), key.c_str());
  MOESCOPE_CHECK(v->type == GgufType::STRING, "GGUF_BAD_KEY", "%s: metadata key %s should be a string", path().c_str(), key.c_str());
  return v->str;
}
std::string GgufFile::get_str(const std::string& key, const std::string& dflt) const { return find(key) ? get_str(key) : dflt; }

int64_t GgufFile::get_int(const std::string& key) const {
  auto v = find(key);
  MOESCOPE_CHECK(v, "GGUF_MISSING_KEY", "%s: metadata key %s is missing", path().c_str(), key.c_str());
  MOESCOPE_CHECK(is_numeric(v->type), "GGUF_BAD_KEY", "%s: metadata key %s should be a number", path().c_str(), key.c_str());
  return v->i;
}
int64_t GgufFile::get_int(const std::string& key, int64_t dflt) const { return find(key) ? get_int(key) : dflt; }

double GgufFile::get_float(const std::string& key) const {
  auto v = find(key);
  MOESCOPE_CHECK(v, "GGUF_MISSING_KEY", "%s: metadata key %s is missing", path().c_str(), key.c_str());
  MOESCOPE_CHECK(is_numeric(v->type), "GGUF_BAD_KEY", "%s: metadata key %s should be a number", path().c_str(), key.c_str());
  return v->num;
}
double GgufFile::get_float(const std::string& key, double dflt) const { return find(key) ? get_float(key) : dflt; }

bool GgufFile::get_bool(const std::string& key, bool dflt) const { return find(key) ? get_int(key) != 0 : dflt; }

}  // namespace moescope
