// The Llama 4 pre-tokenizer (spec §4.1): the tiktoken o200k regex, implemented by hand with the
// semantics of a backtracking engine (leftmost alternative wins, greedy quantifiers give back what
// the rest of the alternative needs), as Hugging Face tokenizers (Oniguruma), tiktoken (fancy-regex)
// and the Python `regex` module run it.
//
//   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//  |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//  |\p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n/]* |\s*[\r\n]+ |\s+(?!\S) |\s+
//
// Input is bytes: an invalid UTF-8 stretch behaves like U+FFFD (a symbol) but keeps its raw bytes in
// the piece, so that encode/decode round-trips any byte string.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace moescope::o200k {

struct Piece {
  size_t begin, end;  // byte offsets into the text, end exclusive
};

// Appends the pieces of text to out, in order; together they cover every byte exactly once.
// The text is decoded chunk_bytes or so at a time, cut only where the result cannot change (a
// parameter so that tests can force tiny chunks).
void split(std::string_view text, std::vector<Piece>& out, size_t chunk_bytes = size_t(1) << 16);

}  // namespace moescope::o200k
