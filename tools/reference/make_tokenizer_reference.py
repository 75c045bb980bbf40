#!/usr/bin/env python3
"""Reference token ids for the tokenizer tests, produced by the Hugging Face `tokenizers`
package and by the `sentencepiece` package (pip install tokenizers sentencepiece gguf).

Writes into tests/data/text/:
  corpus-trained tokenizers, small enough to commit, used by tests that always run:
    gpt2_style.tokenizer.json    byte-level BPE, GPT-2 pre-tokenizer (ByteLevel use_regex)
    llama3_style.tokenizer.json  byte-level BPE, Llama-3 Split regex + ByteLevel(use_regex=False),
                                 ignore_merges, BOS added by a TemplateProcessing post-processor
    smollm_style.tokenizer.json  byte-level BPE, Digits(individual) + ByteLevel, added tokens
    tiny_sp.model                SentencePiece BPE with byte fallback (Llama-2 style)
    tiny_sp_vocab.gguf           the same vocabulary as GGUF tokenizer.ggml.* metadata (no tensors)
    smollm_style_vocab.gguf      smollm_style as GGUF metadata (model gpt2, pre smollm)
    llama3_style_vocab.gguf      llama3_style as GGUF metadata (model gpt2, pre llama-bpe, BOS 0)
  reference_ids.json             {tokenizer name: [{"text", "ids"}]} from the reference libraries
  smollm2_gguf_ids.json          ids for SmolLM2-135M-Instruct's own tokenizer (only when --gguf is
                                 given): an HF tokenizer rebuilt from the GGUF's tokenizer.ggml.*
                                 metadata (tokens, merges, control tokens as special added tokens,
                                 pre-tokenizer Digits(individual_digits) + ByteLevel as in the
                                 model's published tokenizer.json; llama.cpp's "smollm" pre type).

Usage: make_tokenizer_reference.py OUT_DIR [--gguf SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import json
import os
import tempfile

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SAMPLES = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say we've done what you'd like; DON'T they?",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\t\tnewlines\n\n\nand   multiple     spaces\r\nwindows line",
    "Numbers: 0 7 42 1234567 3.14159 -2e10 1,000,000",
    "Grüße aus München! Ça va? Año nuevo, ñandú.",
    "Привет, как дела? Ελληνικά γράμματα.",
    "中文分词测试，你好世界。日本語のテキストも。",
    "한국어 문장입니다. العربية نص تجريبي. हिन्दी पाठ",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ and ☃",
    "def add(a, b):\n    return a + b  # sum\n\nprint(add(1, 2))",
    "for (int i = 0; i < n; ++i) { x[i] *= 2; }  // C++",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "mixed<|im_end|>special<|endoftext|>tokens",
    "",
    " ",
    "\n",
    "a",
    "!!!???...,,,;;;",
    "https://example.com/path?query=1&x=y#frag",
    "\u00a0non-breaking\u2003em-space\u3000ideographic",
]

CORPUS = [s for s in SAMPLES if s] * 3 + [
    "Tokenizers split text into pieces and merge frequent pairs of bytes.",
    "The model reads tokens, not characters; every byte has a token of its own.",
    "Numbers like 2024 and 3.14 appear in text, code and tables.",
    "Les tokenizers découpent le texte. Die Tokenizer teilen den Text.",
    "Los tokenizadores dividen el texto en piezas.",
]

GPT2_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train(pre, vocab_size, specials, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def encode_all(tok):
    return [{"text": s, "ids": tok.encode(s).ids} for s in SAMPLES]


def smollm2_from_gguf(path):
    import gguf
    reader = gguf.GGUFReader(path)

    def strings(key):
        field = reader.fields[key]
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]

    tokens = strings("tokenizer.ggml.tokens")
    merges = strings("tokenizer.ggml.merges")
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False)
                            for i, t in enumerate(types) if t == 3])
    return tok


def write_bpe_gguf(tok, path, pre, bos):
    """A trained byte-level BPE tokenizer as GGUF tokenizer.ggml.* metadata, as llama.cpp's
    converter writes it: special added tokens become CONTROL (3) tokens."""
    import gguf
    model = json.loads(tok.to_str())["model"]
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [None] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    specials = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in specials else 1 for t in tokens])
    writer.add_token_merges(merges)
    if bos is not None:
        writer.add_bos_token_id(bos)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--gguf", help="SmolLM2-135M-Instruct GGUF file")
    args = parser.parse_args()
    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    reference = {}

    gpt2 = train(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 600, SPECIALS)
    gpt2.save(os.path.join(out, "gpt2_style.tokenizer.json"))
    reference["gpt2_style"] = encode_all(gpt2)

    llama3 = train(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        600, ["<|begin_of_text|>", "<|end_of_text|>"], ignore_merges=True)
    llama3.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)])
    llama3.save(os.path.join(out, "llama3_style.tokenizer.json"))
    reference["llama3_style"] = encode_all(llama3)

    smollm = train(pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]), 600, SPECIALS)
    smollm.save(os.path.join(out, "smollm_style.tokenizer.json"))
    reference["smollm_style"] = encode_all(smollm)

    import sentencepiece as spm
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(s.replace("\n", " ") for s in CORPUS))
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(tmp, "tiny_sp"), vocab_size=700,
            model_type="bpe", byte_fallback=True, character_coverage=1.0,
            add_dummy_prefix=True, remove_extra_whitespaces=False,
            normalization_rule_name="identity", minloglevel=2)
        with open(os.path.join(tmp, "tiny_sp.model"), "rb") as f:
            model_bytes = f.read()
    with open(os.path.join(out, "tiny_sp.model"), "wb") as f:
        f.write(model_bytes)
    sp = spm.SentencePieceProcessor(model_proto=model_bytes)
    # SentencePiece encodes text as is (no special tokens in the text), BOS first.
    sp_samples = [s for s in SAMPLES if "<|" not in s]
    reference["tiny_sp"] = [{"text": s, "ids": [sp.bos_id()] + sp.encode(s)} for s in sp_samples]

    import gguf
    writer = gguf.GGUFWriter(os.path.join(out, "tiny_sp_vocab.gguf"), "llama")
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    scores = [sp.get_score(i) for i in range(sp.get_piece_size())]
    def piece_type(i):
        if sp.is_unknown(i): return 2
        if sp.is_control(i): return 3
        if sp.is_byte(i): return 6
        if sp.is_unused(i): return 5
        return 1
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types([piece_type(i) for i in range(len(pieces))])
    writer.add_bos_token_id(sp.bos_id())
    writer.add_eos_token_id(sp.eos_id())
    writer.add_unk_token_id(sp.unk_id())
    writer.add_add_bos_token(True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    write_bpe_gguf(smollm, os.path.join(out, "smollm_style_vocab.gguf"), "smollm", None)
    write_bpe_gguf(llama3, os.path.join(out, "llama3_style_vocab.gguf"), "llama-bpe", 0)

    with open(os.path.join(out, "reference_ids.json"), "w", encoding="utf-8") as f:
        json.dump(reference, f, ensure_ascii=False, indent=0)

    if args.gguf:
        tok = smollm2_from_gguf(args.gguf)
        with open(os.path.join(out, "smollm2_gguf_ids.json"), "w", encoding="utf-8") as f:
            json.dump(encode_all(tok), f, ensure_ascii=False, indent=0)


if __name__ == "__main__":
    main()
