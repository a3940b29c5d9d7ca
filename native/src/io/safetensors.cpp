#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "common/error.h"
#include "io/json.h"
#include "ops/quant.h"

namespace moescope {

bool safetensors_dtype_to_ggml(const std::string& dtype, uint32_t& t) {
  static const std::map<std::string, GgmlType> m = {
      {"F32", GgmlType::F32}, {"F16", GgmlType::F16}, {"BF16", GgmlType::BF16}, {"F64", GgmlType::F64},
      {"I32", GgmlType::I32}, {"I64", GgmlType::I64}, {"I16", GgmlType::I16}, {"I8", GgmlType::I8}};
  auto it = m.find(dtype);
  if (it == m.end()) return false;
  t = (uint32_t)it->second;
  return true;
}

namespace {

std::string dirname_of(const std::string& p) {
  auto k = p.find_last_of('/');
  return k == std::string::npos ? "." : p.substr(0, k);
}

}  // namespace

std::shared_ptr<SafetensorsSet> SafetensorsSet::open(const std::string& path_in) {
  auto s = std::shared_ptr<SafetensorsSet>(new SafetensorsSet());
  std::string path = path_in;
  if (is_directory(path)) {
    if (file_exists(path + "/model.safetensors.index.json")) path += "/model.safetensors.index.json";
    else if (file_exists(path + "/model.safetensors")) path += "/model.safetensors";
    else fail("SAFETENSORS_MISSING", strfmt("%s: no model.safetensors or model.safetensors.index.json in this folder", path.c_str()));
  }
  s->source_ = path;
  const std::string idx_suffix = ".index.json";
  if (path.size() > idx_suffix.size() && path.compare(path.size() - idx_suffix.size(), idx_suffix.size(), idx_suffix) == 0) {
    Json idx = Json::parse(read_text_file(path, 64u << 20), path);
    const Json* wm = idx.get("weight_map");
    MOESCOPE_CHECK(wm && wm->is_object(), "SAFETENSORS_BAD_INDEX", "%s: no \"weight_map\" object", path.c_str());
    std::map<std::string, std::vector<std::string>> by_file;
    for (auto& kv : wm->obj) {
      MOESCOPE_CHECK(kv.second.is_string(), "SAFETENSORS_BAD_INDEX", "%s: weight_map[%s] is not a file name", path.c_str(), kv.first.c_str());
      const std::string& f = kv.second.str;
      MOESCOPE_CHECK(f.find('/') == std::string::npos && f != ".." && !f.empty(), "SAFETENSORS_BAD_INDEX",
                     "%s: shard name %s must be a plain file name", path.c_str(), f.c_str());
      by_file[f].push_back(kv.first);
    }
    for (auto& kv : by_file) s->add_file(dirname_of(path) + "/" + kv.first, &kv.second);
  } else {
    s->add_file(path, nullptr);
  }
  return s;
}

void SafetensorsSet::add_file(const std::string& path, const std::vector<std::string>* expected) {
  auto f = MappedFile::open(path);
  MOESCOPE_CHECK(f->size() >= 8, "SAFETENSORS_TRUNCATED", "%s: %zu bytes is too short for a safetensors file", path.c_str(), f->size());
  uint64_t hlen;
  memcpy(&hlen, f->data(), 8);
  MOESCOPE_CHECK(hlen <= f->size() - 8 && hlen <= (100u << 20), "SAFETENSORS_BAD_HEADER",
                 "%s: header length %llu does not fit the %zu-byte file", path.c_str(), (unsigned long long)hlen, f->size());
  Json h = Json::parse(std::string_view((const char*)f->data() + 8, hlen), path + " (header)");
  MOESCOPE_CHECK(h.is_object(), "SAFETENSORS_BAD_HEADER", "%s: header is not a JSON object", path.c_str());
  const uint64_t data_start = 8 + hlen;
  const uint64_t data_size = f->size() - data_start;
  struct Span { uint64_t b, e; std::string name; };
  std::vector<Span> spans;
  for (auto& kv : h.obj) {
    const std::string& name = kv.first;
    if (name == "__metadata__") {
      if (kv.second.is_object() && metadata_.empty())
        for (auto& m : kv.second.obj)
          if (m.second.is_string()) metadata_[m.first] = m.second.str;
      continue;
    }
    const Json& t = kv.second;
    const Json* dt = t.get("dtype");
    const Json* sh = t.get("shape");
    const Json* off = t.get("data_offsets");
    MOESCOPE_CHECK(dt && dt->is_string() && sh && sh->is_array() && off && off->is_array() && off->arr.size() == 2,
                   "SAFETENSORS_BAD_HEADER", "%s: tensor %s needs dtype, shape and data_offsets", path.c_str(), name.c_str());
    TensorView v;
    v.name = name;
    MOESCOPE_CHECK(safetensors_dtype_to_ggml(dt->str, v.type), "SAFETENSORS_BAD_DTYPE", "%s: tensor %s has dtype %s, which moescope cannot read",
                   path.c_str(), name.c_str(), dt->str.c_str());
    MOESCOPE_CHECK(sh->arr.size() <= 4, "SAFETENSORS_BAD_SHAPE", "%s: tensor %s has %zu dimensions (at most 4)", path.c_str(), name.c_str(), sh->arr.size());
    unsigned __int128 n = 1;
    for (auto it = sh->arr.rbegin(); it != sh->arr.rend(); ++it) {
      MOESCOPE_CHECK(it->is_number() && it->num >= 0 && it->num < 1099511627776.0 && it->num == (double)(int64_t)it->num,
                     "SAFETENSORS_BAD_SHAPE", "%s: tensor %s has a bad dimension", path.c_str(), name.c_str());
      v.ne.push_back((int64_t)it->num);
      n *= (unsigned __int128)(int64_t)it->num;
    }
    if (v.ne.empty()) v.ne.push_back(1);
    for (auto& o : off->arr)
      MOESCOPE_CHECK(o.is_number() && o.num >= 0 && o.num == (double)(uint64_t)o.num, "SAFETENSORS_BAD_OFFSETS",
                     "%s: tensor %s has bad data_offsets", path.c_str(), name.c_str());
    uint64_t b = (uint64_t)off->arr[0].num, e = (uint64_t)off->arr[1].num;
    const TypeTraits* tt = type_traits(v.type);
    unsigned __int128 bytes = n * tt->type_size;
    MOESCOPE_CHECK(b <= e && e <= data_size, "SAFETENSORS_BAD_OFFSETS", "%s: tensor %s data [%llu, %llu) lies outside the %llu data bytes",
                   path.c_str(), name.c_str(), (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
    MOESCOPE_CHECK(bytes == (unsigned __int128)(e - b), "SAFETENSORS_SHAPE_MISMATCH",
                   "%s: tensor %s: shape %s of %s needs %llu bytes but data_offsets span %llu", path.c_str(), name.c_str(),
                   v.shape_str().c_str(), dt->str.c_str(), (unsigned long long)bytes, (unsigned long long)(e - b));
    MOESCOPE_CHECK(index_.count(name) == 0, "SAFETENSORS_DUPLICATE", "%s: tensor %s appears in two shards", path.c_str(), name.c_str());
    v.data = f->data() + data_start + b;
    v.nbytes = (size_t)(e - b);
    v.file = f;
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(v));
    spans.push_back({b, e, name});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.b < b.b; });
  for (size_t k = 1; k < spans.size(); k++)
    MOESCOPE_CHECK(spans[k].b >= spans[k - 1].e, "SAFETENSORS_OVERLAP", "%s: tensors %s and %s overlap", path.c_str(),
                   spans[k - 1].name.c_str(), spans[k].name.c_str());
  if (expected)
    for (auto& n : *expected)
      MOESCOPE_CHECK(index_.count(n), "SAFETENSORS_MISSING", "%s: the index lists tensor %s in this shard, but it is not there",
                     path.c_str(), n.c_str());
}

const TensorView* SafetensorsSet::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace moescope
