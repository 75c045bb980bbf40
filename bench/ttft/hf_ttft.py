#!/usr/bin/env python3
"""Time to first token of Hugging Face transformers on one GPU: a Llama-2-7B- or Llama-3-8B-shaped
model (--model) with random bf16 weights (created on the GPU), SDPA attention, one prefill that
returns the last token's logits. The peer number for ttft_bench and `runahead bench`, run in the
same call on the same card."""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def llama_config(name, max_positions):
    """The shapes of model/random_model.h's presets of that name."""
    if name == "llama2-7b":
        return LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                           max_position_embeddings=max_positions, rms_norm_eps=1e-5,
                           rope_theta=10000.0, tie_word_embeddings=False)
    if name == "llama3-8b":
        return LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                           max_position_embeddings=max(max_positions, 131072), rms_norm_eps=1e-5,
                           rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0,
                                            "factor": 8.0, "low_freq_factor": 1.0,
                                            "high_freq_factor": 4.0,
                                            "original_max_position_embeddings": 8192},
                           tie_word_embeddings=False)
    raise SystemExit(f"unknown model '{name}' (llama2-7b, llama3-8b)")


def make_model(config):
    torch.manual_seed(0)
    try:
        model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa",
                                              dtype=torch.bfloat16)
    except TypeError:
        model = LlamaForCausalLM._from_config(config, attn_implementation="sdpa",
                                              torch_dtype=torch.bfloat16)
    return model.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="llama2-7b", choices=["llama2-7b", "llama3-8b"])
    parser.add_argument("--tokens", default="4096,16384")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    lengths = [int(x) for x in args.tokens.split(",")]

    start = time.perf_counter()
    with torch.device("cuda"):
        model = make_model(llama_config(args.model, max(max(lengths), 4096)))
    torch.cuda.synchronize()
    name = torch.cuda.get_device_name()
    print(f"HF transformers {transformers.__version__}, torch {torch.__version__}, {name}, "
          f"{args.model}: "
          f"model on the GPU in {time.perf_counter() - start:.1f} s, "
          f"attention {model.config._attn_implementation}", flush=True)
    print(f"{'tokens':<8} {'ttft_ms':>10} {'min_ms':>10}", flush=True)
    for n in lengths:
        ids = torch.randint(0, model.config.vocab_size, (1, n), device="cuda")
        times = []
        for i in range(args.warmup + args.repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
                token = int(out.logits[0, -1].argmax())
            elapsed = (time.perf_counter() - t0) * 1e3
            del out
            if i >= args.warmup:
                times.append(elapsed)
        ttft = statistics.median(times)
        print(f"{n:<8} {ttft:10.1f} {min(times):10.1f}   (next token {token})", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"impl": "hf-sdpa", "model": args.model, "device": name,
                                    "tokens": n,
                                    "ttft_ms": ttft, "min_ms": min(times),
                                    "transformers": transformers.__version__,
                                    "torch": torch.__version__}) + "\n")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
