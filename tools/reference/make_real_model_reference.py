#!/usr/bin/env python3
"""Reference greedy continuations and last-token logits of SmolLM2-135M-Instruct (Q4_1 GGUF).

Two independent references write the same JSON layout:
  --backend numpy         (default) a float64 forward pass written here from the Llama
                          definition, on weights dequantized by the `gguf` package; Q and K are
                          un-permuted exactly as Hugging Face transformers' GGUF loader does
                          (reverse_permute), and RoPE uses the rotate-half form of
                          transformers' LlamaModel. Needs numpy + gguf.
  --backend transformers  AutoModelForCausalLM.from_pretrained(dir, gguf_file=...) in float32
                          (transformers dequantizes the GGUF through the gguf package).

Prompt ids come from the tokenizer reference (an HF `tokenizers` tokenizer rebuilt from the GGUF,
see make_tokenizer_reference.py) and are stored with the results, so the C++ test checks the
model alone. Logits are stored for the 64 likeliest tokens and every 64th vocabulary id.

Usage: make_real_model_reference.py GGUF OUT.json [--backend numpy|transformers]
       [--prompt-ids FILE] (a JSON list of {"text", "ids"}, or another reference file whose
       prompts to reuse; default: computed with tokenizers)
"""
import argparse
import json
import os
import sys

import numpy as np

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nName three primary colors.<|im_end|>\n<|im_start|>assistant\n",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
]
NEW_TOKENS = 16
STRIDE = 64
TOP = 64


def prompt_ids(gguf_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_tokenizer_reference import smollm2_from_gguf
    tok = smollm2_from_gguf(gguf_path)
    return [{"text": p, "ids": tok.encode(p).ids} for p in PROMPTS]


class NumpyLlama:
    def __init__(self, path):
        import gguf
        from gguf.quants import dequantize
        reader = gguf.GGUFReader(path)

        def field(key):
            f = reader.fields[key]
            return f.parts[f.data[0]][0] if len(f.data) == 1 else None

        self.layers = int(field("llama.block_count"))
        self.heads = int(field("llama.attention.head_count"))
        self.kv_heads = int(field("llama.attention.head_count_kv"))
        self.hidden = int(field("llama.embedding_length"))
        self.theta = float(field("llama.rope.freq_base"))
        self.eps = float(field("llama.attention.layer_norm_rms_epsilon"))
        self.head_dim = self.hidden // self.heads
        self.w = {}
        for t in reader.tensors:
            # gguf-py gives shape in numpy order (slowest first): [rows, cols].
            self.w[t.name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(
                [int(d) for d in reversed(t.shape)])
        for l in range(self.layers):
            q, k = f"blk.{l}.attn_q.weight", f"blk.{l}.attn_k.weight"
            self.w[q] = self.reverse_permute(self.w[q], self.heads)
            self.w[k] = self.reverse_permute(self.w[k], self.kv_heads)
        self.lm_head = self.w.get("output.weight", self.w["token_embd.weight"])

    @staticmethod
    def reverse_permute(w, heads):
        # transformers.integrations.ggml: undo llama.cpp's interleaving of rotary pairs.
        dim = w.shape[0] // heads // 2
        return w.reshape(heads, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)

    def rms(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x, heads):
        n = x.shape[0]
        d = self.head_dim
        inv = 1.0 / self.theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
        angles = np.outer(np.arange(n, dtype=np.float64), inv)
        cos = np.cos(np.concatenate([angles, angles], -1))[:, None, :]
        sin = np.sin(np.concatenate([angles, angles], -1))[:, None, :]
        x = x.reshape(n, heads, d)
        half = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
        return (x * cos + half * sin).reshape(n, heads * d)

    def logits(self, ids):
        w = self.w
        n = len(ids)
        x = w["token_embd.weight"][ids]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        group = self.heads // self.kv_heads
        for l in range(self.layers):
            p = f"blk.{l}."
            h = self.rms(x, w[p + "attn_norm.weight"])
            q = self.rope(h @ w[p + "attn_q.weight"].T, self.heads)
            k = self.rope(h @ w[p + "attn_k.weight"].T, self.kv_heads)
            v = h @ w[p + "attn_v.weight"].T
            out = np.zeros_like(q)
            d = self.head_dim
            for head in range(self.heads):
                kv = head // group
                qh = q[:, head * d:(head + 1) * d]
                kh = k[:, kv * d:(kv + 1) * d]
                vh = v[:, kv * d:(kv + 1) * d]
                s = qh @ kh.T / np.sqrt(d) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                out[:, head * d:(head + 1) * d] = (s / s.sum(-1, keepdims=True)) @ vh
            x = x + out @ w[p + "attn_output.weight"].T
            h = self.rms(x, w[p + "ffn_norm.weight"])
            gate = h @ w[p + "ffn_gate.weight"].T
            up = h @ w[p + "ffn_up.weight"].T
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
        x = self.rms(x[-1:], w["output_norm.weight"])
        return (x @ self.lm_head.T)[0]


class TransformersLlama:
    def __init__(self, path):
        import torch
        from transformers import AutoModelForCausalLM
        self.torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(
            os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path),
            dtype=torch.float32)
        self.model.eval()

    def logits(self, ids):
        with self.torch.no_grad():
            out = self.model(self.torch.tensor([ids]))
        return out.logits[0, -1].double().numpy()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf")
    parser.add_argument("out")
    parser.add_argument("--backend", choices=["numpy", "transformers"], default="numpy")
    parser.add_argument("--prompt-ids")
    args = parser.parse_args()
    if args.prompt_ids:
        with open(args.prompt_ids, encoding="utf-8") as f:
            prompts = json.load(f)
        if isinstance(prompts, dict):  # another reference file: reuse its prompts and ids
            prompts = [{"text": p["text"], "ids": p["prompt_ids"]} for p in prompts["prompts"]]
    else:
        prompts = prompt_ids(args.gguf)
    model = NumpyLlama(args.gguf) if args.backend == "numpy" else TransformersLlama(args.gguf)
    results = []
    for prompt in prompts:
        ids = list(prompt["ids"])
        first = model.logits(ids)
        continuation = []
        margins = []
        logits = first
        for _ in range(NEW_TOKENS):
            order = np.argsort(-logits)
            continuation.append(int(order[0]))
            margins.append(float(logits[order[0]] - logits[order[1]]))
            ids.append(int(order[0]))
            logits = model.logits(ids)
        top = np.argsort(-first)[:TOP]
        sampled = np.arange(0, first.shape[0], STRIDE)
        results.append({
            "text": prompt["text"],
            "prompt_ids": prompt["ids"],
            "greedy": continuation,
            "greedy_margins": margins,  # top-1 minus top-2 logit at each step
            "logits_ids": [int(i) for i in np.concatenate([top, sampled])],
            "logits": [float(first[i]) for i in np.concatenate([top, sampled])],
        })
        print(prompt["text"][:40].replace("\n", " "), "->", continuation, file=sys.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"model": os.path.basename(args.gguf), "reference": args.backend,
                   "new_tokens": NEW_TOKENS, "prompts": results}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
