#include "hooks/hooks.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"

namespace moescope {

namespace {

constexpr HookInfo kHooks[] = {
    {HookPoint::Embed, "hook_embed", false, false, false},
    {HookPoint::ResidPre, "blocks.{l}.hook_resid_pre", true, false, false},
    {HookPoint::Ln1, "blocks.{l}.ln1.hook_normalized", true, false, false},
    {HookPoint::Q, "blocks.{l}.attn.hook_q", true, false, false},
    {HookPoint::K, "blocks.{l}.attn.hook_k", true, false, false},
    {HookPoint::V, "blocks.{l}.attn.hook_v", true, false, false},
    {HookPoint::RotQ, "blocks.{l}.attn.hook_rot_q", true, false, false},
    {HookPoint::RotK, "blocks.{l}.attn.hook_rot_k", true, false, false},
    {HookPoint::Pattern, "blocks.{l}.attn.hook_pattern", true, false, false},
    {HookPoint::Z, "blocks.{l}.attn.hook_z", true, false, false},
    {HookPoint::AttnOut, "blocks.{l}.hook_attn_out", true, false, false},
    {HookPoint::ResidMid, "blocks.{l}.hook_resid_mid", true, false, false},
    {HookPoint::Ln2, "blocks.{l}.ln2.hook_normalized", true, false, false},
    {HookPoint::RouterLogits, "blocks.{l}.mlp.hook_router_logits", true, true, false},
    {HookPoint::ExpertIndices, "blocks.{l}.mlp.hook_expert_indices", true, true, true},
    {HookPoint::ExpertWeights, "blocks.{l}.mlp.hook_expert_weights", true, true, false},
    {HookPoint::RoutedOut, "blocks.{l}.mlp.hook_routed_out", true, true, false},
    {HookPoint::SharedOut, "blocks.{l}.mlp.hook_shared_out", true, true, false},
    {HookPoint::MlpOut, "blocks.{l}.hook_mlp_out", true, false, false},
    {HookPoint::ResidPost, "blocks.{l}.hook_resid_post", true, false, false},
    {HookPoint::LnFinal, "ln_final.hook_normalized", false, false, false},
    {HookPoint::Logits, "unembed.hook_out", false, false, false},
};
static_assert(sizeof(kHooks) / sizeof(kHooks[0]) == (size_t)HookPoint::COUNT, "one table row per hook point");

}  // namespace

const HookInfo& hook_info(HookPoint p) { return kHooks[(size_t)p]; }

std::string hook_name(HookPoint p, int layer) {
  std::string n = hook_info(p).name;
  auto k = n.find("{l}");
  if (k != std::string::npos) n.replace(k, 3, std::to_string(layer));
  return n;
}

std::vector<std::string> hook_names(const Llama4Config& c) {
  std::vector<std::string> out;
  out.push_back(hook_name(HookPoint::Embed, 0));
  for (int l = 0; l < c.n_layer; l++)
    for (size_t p = (size_t)HookPoint::ResidPre; p <= (size_t)HookPoint::ResidPost; p++) {
      const HookInfo& h = kHooks[p];
      if (h.moe_only && !c.layers[l].is_moe) continue;
      out.push_back(hook_name(h.id, l));
    }
  out.push_back(hook_name(HookPoint::LnFinal, 0));
  out.push_back(hook_name(HookPoint::Logits, 0));
  return out;
}

bool parse_hook_name(const std::string& name, const Llama4Config& c, HookPoint& p, int& layer) {
  for (auto& h : kHooks) {
    if (!h.per_layer) {
      if (name == h.name) { p = h.id; layer = 0; return true; }
      continue;
    }
    std::string pat = h.name;  // "blocks.{l}.rest"
    std::string pre = pat.substr(0, pat.find("{l}")), post = pat.substr(pat.find("{l}") + 3);
    if (name.size() <= pre.size() + post.size() || name.compare(0, pre.size(), pre) != 0 ||
        name.compare(name.size() - post.size(), post.size(), post) != 0)
      continue;
    std::string num = name.substr(pre.size(), name.size() - pre.size() - post.size());
    if (num.empty() || num.size() > 6 || num.find_first_not_of("0123456789") != std::string::npos) continue;
    int l = std::stoi(num);
    if (l >= c.n_layer) return false;
    if (h.moe_only && !c.layers[l].is_moe) return false;
    p = h.id;
    layer = l;
    return true;
  }
  return false;
}

int64_t hook_row_len(HookPoint p, const Llama4Config& c, int64_t S) {
  switch (p) {
    case HookPoint::Q: case HookPoint::RotQ: case HookPoint::Z: return c.n_head * c.head_dim;
    case HookPoint::K: case HookPoint::V: case HookPoint::RotK: return c.n_head_kv * c.head_dim;
    case HookPoint::Pattern: return c.n_head * S;
    case HookPoint::RouterLogits: return c.n_expert;
    case HookPoint::ExpertIndices: case HookPoint::ExpertWeights: return c.n_expert_used;
    case HookPoint::Logits: return c.n_vocab;
    default: return c.n_embd;
  }
}

bool CapturePlan::any(HookPoint p) const {
  if (on.empty()) return false;
  for (bool b : on[(size_t)p])
    if (b) return true;
  return false;
}

uint64_t estimate_capture_bytes(const Llama4Config& c, const CapturePlan& plan, int64_t len) {
  if (plan.on.empty()) return 0;
  const int64_t rows = std::max<int64_t>(0, std::min(plan.pos_end, len) - std::max<int64_t>(0, plan.pos_begin));
  const int64_t heads = plan.heads.empty() ? c.n_head : (int64_t)plan.heads.size();
  uint64_t total = 0;
  for (size_t p = 0; p < (size_t)HookPoint::COUNT; p++) {
    int64_t row = p == (size_t)HookPoint::Pattern ? heads * len : hook_row_len((HookPoint)p, c, len);
    for (bool b : plan.on[p])
      if (b) total += (uint64_t)rows * (uint64_t)row * 4;
  }
  return total;
}

CaptureStore::CaptureStore(const Llama4Config& c, const CapturePlan& plan, int64_t max_len) : c_(c), plan_(plan), max_len_(max_len) {
  head_slot_.assign(c.n_head, -1);
  if (plan_.heads.empty()) {
    for (int h = 0; h < c.n_head; h++) head_slot_[h] = h;
  } else {
    for (size_t k = 0; k < plan_.heads.size(); k++) {
      int h = plan_.heads[k];
      MOESCOPE_CHECK(h >= 0 && h < c.n_head, "CAPTURE_BAD_PLAN", "capture plan: head %d is outside 0..%lld", h, (long long)c.n_head - 1);
      head_slot_[h] = (int)k;
    }
  }
}

CaptureStore::Buf& CaptureStore::buf(HookPoint p, int layer) { return bufs_[{(int)p, hook_info(p).per_layer ? layer : 0}]; }

void CaptureStore::add(HookPoint p, int layer, const float* data, int64_t T, int64_t row, const int64_t* pos) {
  if (!plan_.wants(p, layer)) return;
  Buf& b = buf(p, layer);
  b.row = row;
  for (int64_t t = 0; t < T; t++) {
    if (!plan_.in_range(pos[t])) continue;
    b.f.insert(b.f.end(), data + t * row, data + (t + 1) * row);
    b.pos.push_back(pos[t]);
  }
}

void CaptureStore::add_int(HookPoint p, int layer, const int32_t* data, int64_t T, int64_t row, const int64_t* pos) {
  if (!plan_.wants(p, layer)) return;
  Buf& b = buf(p, layer);
  b.row = row;
  for (int64_t t = 0; t < T; t++) {
    if (!plan_.in_range(pos[t])) continue;
    b.i.insert(b.i.end(), data + t * row, data + (t + 1) * row);
    b.pos.push_back(pos[t]);
  }
}

void CaptureStore::begin_pattern(int layer, int64_t T, const int64_t* pos) {
  if (!plan_.wants(HookPoint::Pattern, layer)) return;
  Buf& b = buf(HookPoint::Pattern, layer);
  const int64_t heads = plan_.heads.empty() ? c_.n_head : (int64_t)plan_.heads.size();
  b.row = heads * max_len_;
  for (int64_t t = 0; t < T; t++) {
    if (!plan_.in_range(pos[t])) continue;
    pattern_row_index_[{layer, pos[t]}] = (int64_t)b.pos.size();
    b.pos.push_back(pos[t]);
  }
  b.f.resize(b.pos.size() * b.row, 0.f);
}

float* CaptureStore::pattern_row(int layer, int64_t pos, int head) {
  if (head_slot_[head] < 0) return nullptr;
  auto it = pattern_row_index_.find({layer, pos});
  if (it == pattern_row_index_.end()) return nullptr;
  Buf& b = buf(HookPoint::Pattern, layer);
  return b.f.data() + it->second * b.row + (int64_t)head_slot_[head] * max_len_;
}

std::vector<Captured> CaptureStore::finish(int64_t S) {
  std::vector<Captured> out;
  for (auto& kv : bufs_) {
    HookPoint p = (HookPoint)kv.first.first;
    int layer = kv.first.second;
    Buf& b = kv.second;
    Captured c;
    c.name = hook_name(p, layer);
    c.positions = b.pos;
    const int64_t n = (int64_t)b.pos.size();
    if (p == HookPoint::Pattern) {
      // Stored [rows, heads, max_len]; delivered [heads, rows, S] as the fixtures lay it out.
      const int64_t heads = b.row / max_len_;
      auto f = std::make_shared<std::vector<float>>((size_t)(heads * n * S));
      for (int64_t r = 0; r < n; r++)
        for (int64_t h = 0; h < heads; h++)
          memcpy(f->data() + (h * n + r) * S, b.f.data() + r * b.row + h * max_len_, S * sizeof(float));
      c.f = f;
      c.shape = {heads, n, S};
    } else if (hook_info(p).is_int) {
      c.is_int = true;
      c.i = std::make_shared<std::vector<int32_t>>(std::move(b.i));
      c.shape = {n, b.row};
    } else {
      c.f = std::make_shared<std::vector<float>>(std::move(b.f));
      c.shape = {n, b.row};
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace moescope
