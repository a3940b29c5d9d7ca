"""Byte-level BPE for the TinyScout domain, with Llama 4's pre-tokenizer and special tokens.

Written out as a Hugging Face `tokenizer.json` (ByteLevel BPE, the structure of the golden
tiny-scout tokenizer: Split with the o200k regex + ByteLevel, merges, added_tokens, a
TemplateProcessing post-processor that prepends <|begin_of_text|>), which moescope's tokenizer loads.

Pre-tokenisation here is the o200k pattern (spec §4.1) restricted to ASCII text, where it is exact:
\\p{Lu} = [A-Z], \\p{Ll} = [a-z], \\p{N} = [0-9], and \\p{Lt}, \\p{Lm}, \\p{Lo}, \\p{M} match nothing.
The corpus is ASCII; the test checks that moescope tokenises every prompt to the same ids.
"""
import json
import re
from collections import Counter

O200K_PATTERN = (
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
_C = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
ASCII_PATTERN = re.compile(
    r"[^\r\nA-Za-z0-9]?[A-Z]*[a-z]+" + _C + r"|[^\r\nA-Za-z0-9]?[A-Z]+[a-z]*" + _C
    + r"|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Llama 4's special tokens (spec §4.2), in their order; ids here are n_bpe + index.
SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|header_start|>", "<|header_end|>", "<|eom|>", "<|eot|>", "<|step|>", "<|python_start|>",
    "<|python_end|>", "<|finetune_right_pad|>", "<|image_start|>", "<|image_end|>", "<|image|>",
    "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>",
]
_SPECIAL_RE = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


B2U = bytes_to_unicode()


def pretokenize(text):
    assert all(ord(ch) < 128 for ch in text), "TinyScout's corpus is ASCII"
    return ASCII_PATTERN.findall(text)


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges  # list of (a, b) unicode-symbol strings, by rank
        self.vocab = {B2U[b]: b for b in range(256)}  # byte token id = byte value (as the golden)
        for a, b in merges:
            self.vocab.setdefault(a + b, len(self.vocab))
        self.n_bpe = len(self.vocab)
        self.special = {s: self.n_bpe + i for i, s in enumerate(SPECIAL_TOKENS)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.id_to_str = {v: k for k, v in self.vocab.items()}
        self.id_to_str.update({v: k for k, v in self.special.items()})
        self.cache = {}

    @property
    def vocab_size(self):
        return self.n_bpe + len(SPECIAL_TOKENS)

    def sid(self, name):
        return self.special[name]

    @staticmethod
    def train(texts, n_merges):
        words = Counter()
        for t in texts:
            for part in _SPECIAL_RE.split(t):
                if part and part not in SPECIAL_TOKENS:
                    for p in pretokenize(part):
                        words["".join(B2U[b] for b in p.encode())] += 1
        seqs = {w: list(w) for w in words}
        merges = []
        for _ in range(n_merges):
            pairs = Counter()
            for w, c in words.items():
                s = seqs[w]
                for i in range(len(s) - 1):
                    pairs[(s[i], s[i + 1])] += c
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))  # ties: the larger pair (deterministic)
            if best[1] < 2:
                break
            a, b = best[0]
            merges.append((a, b))
            for w in words:
                s = seqs[w]
                i, out = 0, []
                while i < len(s):
                    if i < len(s) - 1 and s[i] == a and s[i + 1] == b:
                        out.append(a + b)
                        i += 2
                    else:
                        out.append(s[i])
                        i += 1
                seqs[w] = out
        return Tokenizer(merges)

    def _bpe(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        s = [B2U[b] for b in piece.encode()]
        while len(s) > 1:
            best, bi = None, -1
            for i in range(len(s) - 1):
                r = self.ranks.get((s[i], s[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            s = s[:bi] + [s[bi] + s[bi + 1]] + s[bi + 2:]
        ids = [self.vocab[x] for x in s]
        self.cache[piece] = ids
        return ids

    def encode_pieces(self, text):
        """[(piece text, [ids])]: special tokens are whole pieces."""
        out = []
        for part in _SPECIAL_RE.split(text):
            if not part:
                continue
            if part in self.special:
                out.append((part, [self.special[part]]))
            else:
                for p in pretokenize(part):
                    out.append((p, self._bpe(p)))
        return out

    def encode(self, text, bos=False):
        ids = [self.special["<|begin_of_text|>"]] if bos else []
        for _, t in self.encode_pieces(text):
            ids += t
        return ids

    def decode(self, ids):
        u2b = {v: k for k, v in B2U.items()}
        out = bytearray()
        for i in ids:
            s = self.id_to_str[i]
            if i >= self.n_bpe:
                out += s.encode()
            else:
                out += bytes(u2b[ch] for ch in s)
        return out.decode("utf-8", errors="replace")

    def save(self, path):
        with open(path, "w") as f:
            json.dump({"merges": [a + " " + b for a, b in self.merges]}, f)

    @staticmethod
    def load(path):
        with open(path) as f:
            m = json.load(f)["merges"]
        return Tokenizer([tuple(x.split(" ")) for x in m])

    def hf_json(self):
        added = [{"id": self.special[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for s in SPECIAL_TOKENS]
        bos = "<|begin_of_text|>"
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": O200K_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                        {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {bos: {"id": bos, "ids": [self.special[bos]], "tokens": [bos]}}},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [a + " " + b for a, b in self.merges]},
        }
