#!/usr/bin/env python3
"""Writes the seed inputs of the file-format fuzz targets into fuzz/corpus/ (kept in the
repository; rerun after a format change): small safetensors and GGUF files, calibration
profiles, and the test tokenizer.json files. fuzz_write_seeds writes the wire formats'."""
import json
import pathlib
import shutil
import struct

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "fuzz" / "corpus"


def write(target, name, data):
    path = corpus / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, pad=True, metadata=None):
    """tensors: (name, dtype, shape, element bytes); data in the given order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, size in tensors:
        count = 1
        for dim in shape:
            count *= dim
        blob = bytes((i * 37 + 11) % 256 for i in range(count * size))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + data


write("safetensors", "matrices", safetensors(
    [("model.embed_tokens.weight", "F32", [4, 3], 4), ("lm_head.weight", "BF16", [4, 3], 2),
     ("model.norm.weight", "F16", [3], 2)], metadata={"format": "pt"}))
write("safetensors", "misaligned", safetensors(
    [("a", "F16", [3], 2), ("b", "F32", [2, 2], 4), ("empty", "F32", [0, 5], 4)], pad=False))
write("safetensors", "rank3", safetensors([("cube", "F32", [2, 1, 2], 4)]))


def gguf_string(text):
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf(kvs, tensors, alignment=32):
    """kvs: (key, type id, payload bytes); tensors: (name, dims, ggml type, data bytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, type_id, payload in kvs:
        out += gguf_string(key) + struct.pack("<I", type_id) + payload
    offset, offsets = 0, []
    for _, _, _, data in tensors:
        offsets.append(offset)
        offset += (len(data) + alignment - 1) // alignment * alignment
    for (name, dims, type_id, _), tensor_offset in zip(tensors, offsets):
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", type_id, tensor_offset)
    out += b"\0" * (-len(out) % alignment)
    start = len(out)
    for (_, _, _, data), tensor_offset in zip(tensors, offsets):
        out += b"\0" * (start + tensor_offset - len(out)) + data
    return out


def q8_0_block(scale_bits):
    return struct.pack("<H", scale_bits) + bytes((i * 7) % 256 for i in range(32))


def q4_0_block(scale_bits):
    return struct.pack("<H", scale_bits) + bytes((i * 13) % 256 for i in range(16))


def q4_1_block(scale_bits):
    return struct.pack("<HH", scale_bits, 0x3c00) + bytes((i * 5) % 256 for i in range(16))


kvs = [
    ("general.architecture", 8, gguf_string("llama")),
    ("general.alignment", 4, struct.pack("<I", 32)),
    ("llama.block_count", 4, struct.pack("<I", 1)),
    ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
    ("llama.use_parallel", 7, b"\1"),
    ("llama.big", 10, struct.pack("<Q", 2**63 + 5)),
    ("llama.ratios", 9, struct.pack("<IQ", 12, 2) + struct.pack("<dd", 0.5, -1.5)),
    ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gguf_string("a") + gguf_string("b")),
]
tensors = [
    ("f32", [4, 2], 0, struct.pack("<8f", *range(8))),
    ("f16", [4], 1, struct.pack("<4H", 0x3c00, 0xbc00, 0x7c00, 0x0001)),
    ("bf16", [2, 2], 30, struct.pack("<4H", 0x3f80, 0xc000, 0x7fc0, 0x0000)),
    ("q8_0", [32, 2], 8, q8_0_block(0x3c00) + q8_0_block(0x2e66)),
    ("q4_0", [32], 2, q4_0_block(0x3800)),
    ("q4_1", [32], 3, q4_1_block(0x3400)),
]
write("gguf", "tensors", gguf(kvs, tensors))
write("gguf", "no_tensors", gguf(kvs[:3], []))
for vocab in ("smollm_style_vocab.gguf", "tiny_sp_vocab.gguf"):
    shutil.copy(root / "tests" / "data" / "text" / vocab, corpus / "gguf" / vocab)

corpus.joinpath("tokenizer_json").mkdir(parents=True, exist_ok=True)
for name in ("gpt2_style", "llama3_style", "smollm_style"):
    shutil.copy(root / "tests" / "data" / "text" / f"{name}.tokenizer.json",
                corpus / "tokenizer_json" / f"{name}.tokenizer.json")
# tokenizer_json_fuzzer reads a tokenizer_config.json after a NUL byte.
smollm = (root / "tests" / "data" / "text" / "smollm_style.tokenizer.json").read_bytes()
write("tokenizer_json", "smollm_style_with_config", smollm + b"\0" + json.dumps(
    {"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "add_bos_token": True}).encode())

# A small byte-level BPE tokenizer, and inputs that once crashed the reader (kept as seeds).
minimal = {
    "added_tokens": [{"id": 4, "content": "<|im_start|>", "special": True},
                     {"id": 5, "content": "<|im_end|>", "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Split", "pattern": {"String": "\n"}, "behavior": "Isolated"},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}]},
    "post_processor": {"type": "TemplateProcessing", "single": [
        {"SpecialToken": {"id": "<|im_start|>"}}, {"Sequence": {"id": "A"}},
        {"SpecialToken": {"id": "<|im_end|>"}}]},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"H": 0, "e": 1, "He": 2, "\u0120": 3},
              "merges": ["H e", ["He", "\u0120"]], "ignore_merges": False}}
write("tokenizer_json", "minimal.json", json.dumps(minimal))
bad_ids = {"negative_added_id": ("added", -1), "float_added_id": ("added", 1e300),
           "float_vocab_id": ("vocab", 1e300), "max_vocab_id": ("vocab", 2**63 - 1)}
for name, (where, bad) in bad_ids.items():
    broken = json.loads(json.dumps(minimal))
    if where == "added":
        broken["added_tokens"][0]["id"] = bad
    else:
        broken["model"]["vocab"]["H"] = bad
    write("tokenizer_json", "regression_" + name + ".json", json.dumps(broken))

profile = {
    "format": "runahead-profile", "version": 1,
    "model": {"hash": "0123456789abcdef", "layers": 32, "kv_bytes_per_token": 16384,
              "qkv_fraction": 0.3, "name": "llama2-7b", "hidden": 4096, "kv_dim": 4096,
              "ffn_hidden": 11008},
    "overhead_seconds": 0.0008,
    "workers": [
        {"name": "w0", "backend": "cuda:0", "per_token_seconds": 1e-5, "per_key_seconds": 2e-9,
         "fixed_seconds": 1e-3, "per_prefix_token_seconds": 0.0, "qkv_fraction": 0.3,
         "fit_error": 0.01},
        {"name": "w1", "backend": "cuda:1", "per_token_seconds": 2e-5, "per_key_seconds": 4e-9,
         "fixed_seconds": 2e-3, "per_prefix_token_seconds": 5e-7, "qkv_fraction": 0.3,
         "fit_error": 0.02}],
    "links": {"default": {"latency_seconds": 2e-5, "bytes_per_second": 5e10},
              "pairs": [{"from": "w0", "to": "w1", "latency_seconds": 1e-4,
                         "bytes_per_second": 1e10}]},
    "searched": [
        {"tokens": 1000, "workers": 2, "fractions": [0.6], "measured_ttft_ms": 10.0,
         "model_ttft_ms": 10.5},
        {"tokens": 3000, "workers": 2, "fractions": [0.7], "measured_ttft_ms": 30.0,
         "model_ttft_ms": 30.2},
        {"tokens": 2000, "workers": 3, "fractions": [0.2, 0.5], "measured_ttft_ms": 20.0,
         "model_ttft_ms": 21.0}]}
write("profile", "full.json", json.dumps(profile, indent=2))
write("profile", "minimal.json", json.dumps({
    "format": "runahead-profile", "version": 1,
    "model": {"hash": "h", "layers": 2, "kv_bytes_per_token": 64},
    "overhead_seconds": 0,
    "workers": [{"name": "cpu", "backend": "cpu", "per_token_seconds": 0.001,
                 "per_key_seconds": 0}]}))
# Once ended the process: a number beyond double's range (nlohmann's out_of_range error).
write("profile", "regression_number_overflow.json", json.dumps({
    "format": "runahead-profile", "version": 1,
    "model": {"hash": "h", "layers": 2, "kv_bytes_per_token": 1.0},
    "workers": [{"name": "cpu", "per_token_seconds": 0.001, "per_key_seconds": 0}]}).replace(
        '"kv_bytes_per_token": 1.0', '"kv_bytes_per_token": 1e3001'))
