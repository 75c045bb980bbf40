#!/usr/bin/env python3
"""Golden references from Hugging Face transformers for the checkpoint loader and the CPU backend.

Writes small random-weight checkpoints with transformers (save_pretrained, safetensors) and what
the Hugging Face model computes on them, in fp32, for a fixed prompt:

  OUT/<name>/config.json, model.safetensors    the checkpoint, as transformers saves it
  OUT/<name>/golden.safetensors                f32 tensors:
      logits                 [prompt_len, vocab]  logits of every prompt position
      layers.<L>.keys        [len(kv_positions), kv_heads * head_dim]  K after RoPE
      layers.<L>.values      [len(kv_positions), kv_heads * head_dim]
  OUT/<name>/golden.json                       prompt ids, kv_positions, the greedy continuation,
                                               the smallest top-1/top-2 logit margin, versions

K/V rows put the heads side by side (head h in columns h*head_dim...), as the KV cache of the
runtime stores them; they come from the forward's past_key_values ([batch, kv_heads, seq, dim]).
The weights are stored as the checkpoint's dtype (fp32, bf16 or fp16) and the reference runs in
fp32 on exactly those stored values.

Models (all with odd sizes: head_dim 48, vocab near 1000, hidden not a power of two):
  llama_mha   LlamaForCausalLM, 2 heads = 2 KV heads, linear rope scaling, untied, fp32 storage
  llama_gqa   LlamaForCausalLM, 4 heads / 2 KV heads, llama3 rope scaling, tied, bf16 storage
  falcon_mqa  FalconForCausalLM (Falcon-7B layout: multi_query, parallel_attn, LayerNorm with
              bias, GELU), untied, fp16 storage

Requires torch and transformers (written against transformers 5.17, torch 2.11); the models
are tiny and run on the CPU. Rerun from the repository root with:
  python3 tools/golden/make_golden.py --out tests/data/golden
or, on another machine that has torch and transformers, write to a scratch folder there
  python3 tools/golden/make_golden.py --out /tmp/golden && tar czf golden.tgz -C /tmp golden
and unpack golden.tgz into tests/data/. The outputs are deterministic for a given torch version
(seeded CPU generator, one thread); keep them under 5 MB in all (du -sh tests/data/golden), then
run golden_test. Options: --models llama_gqa (a subset), --seed N (the first seed tried).
"""

import argparse
import copy
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file

PROMPT_LEN = 29
NEW_TOKENS = 8
# A continuation whose steps are decided by less than this (in logits) would hinge on rounding
# order; the script then tries the next seed.
MIN_MARGIN = 1e-2


def rope_kwargs(theta, scaling):
    """rope settings in the form this transformers version takes (5.x: rope_parameters)."""
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        params = {"rope_type": "default", "rope_theta": theta}
        if scaling:
            params.update(scaling)
        return {"rope_parameters": params}
    kwargs = {"rope_theta": theta}
    if scaling:
        legacy = dict(scaling)
        legacy["type"] = legacy.pop("rope_type")
        kwargs["rope_scaling"] = legacy
    return kwargs


def llama_mha_config():
    return transformers.LlamaConfig(
        vocab_size=1000,
        hidden_size=96,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=48,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        **rope_kwargs(10000.0, {"rope_type": "linear", "factor": 2.0}),
    )


def llama_gqa_config():
    return transformers.LlamaConfig(
        vocab_size=1003,
        hidden_size=192,
        intermediate_size=232,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=48,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=[2, 3],
        **rope_kwargs(
            10000.0,
            {
                "rope_type": "llama3",
                "factor": 4.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
    )


def falcon_mqa_config():
    return transformers.FalconConfig(
        vocab_size=997,
        hidden_size=144,
        num_hidden_layers=2,
        num_attention_heads=3,
        num_kv_heads=1,
        multi_query=True,
        parallel_attn=True,
        new_decoder_architecture=False,
        alibi=False,
        bias=False,
        ffn_hidden_size=328,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=11,
        eos_token_id=11,
    )


MODELS = {
    "llama_mha": (llama_mha_config, transformers.LlamaForCausalLM, torch.float32),
    "llama_gqa": (llama_gqa_config, transformers.LlamaForCausalLM, torch.bfloat16),
    "falcon_mqa": (falcon_mqa_config, transformers.FalconForCausalLM, torch.float16),
}


def randomize(model, generator):
    """Weights with some spread: unit-scale embeddings, 1/sqrt(fan_in) matrices, norms near 1."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            shape = param.shape
            noise = torch.randn(shape, generator=generator, dtype=torch.float32)
            is_norm = "norm" in name or ".ln_" in name or name.endswith("ln_f.weight")
            if name.endswith(".bias"):
                value = 0.1 * noise
            elif is_norm:
                value = 1.0 + 0.2 * noise
            elif "embed" in name or "word_embeddings" in name:
                # Tied: a token's own embedding would dominate its logit and greedy decoding would
                # repeat the last token; small embeddings leave the logits to the layers.
                tied = model.config.tie_word_embeddings
                value = noise / (shape[-1] ** 0.5) if tied else noise
            else:
                value = noise / (shape[-1] ** 0.5)
            param.copy_(value)


def kv_of_layer(cache, layer):
    """(keys, values) of one layer, [batch, kv_heads, seq, head_dim], across cache API versions."""
    if hasattr(cache, "layers"):
        return cache.layers[layer].keys, cache.layers[layer].values
    if hasattr(cache, "key_cache"):
        return cache.key_cache[layer], cache.value_cache[layer]
    return cache[layer][0], cache[layer][1]


def side_by_side(kv, positions):
    """[1, heads, seq, dim] -> rows of the given positions, heads side by side: [P, heads*dim]."""
    rows = kv[0].permute(1, 0, 2)  # [seq, heads, dim]
    return rows[positions].reshape(len(positions), -1).contiguous()


def greedy_by_hand(model, prompt):
    """Greedy continuation by full forwards, and the smallest top-1/top-2 logit margin met."""
    ids = prompt.clone()
    tokens, margin = [], float("inf")
    for _ in range(NEW_TOKENS):
        logits = model(input_ids=ids, use_cache=False).logits[0, -1].float()
        top = torch.topk(logits, 2).values
        margin = min(margin, float(top[0] - top[1]))
        token = int(torch.argmax(logits))
        tokens.append(token)
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return tokens, margin


def check_reload(model_class, directory, prompt, logits):
    """The saved checkpoint, loaded as transformers loads it, must give the same logits."""
    try:
        reloaded = model_class.from_pretrained(
            directory, dtype=torch.float32, attn_implementation="eager"
        )
    except TypeError:
        reloaded = model_class.from_pretrained(
            directory, torch_dtype=torch.float32, attn_implementation="eager"
        )
    with torch.no_grad():
        again = reloaded.eval()(input_ids=prompt).logits
    error = float((again - logits).abs().max() / logits.abs().max())
    print(f"{directory}: reloaded checkpoint reproduces the logits within {error:.1e}")
    if error > 1e-6:
        sys.exit(f"{directory}: the reloaded checkpoint differs from the reference model")


def make_one(name, out_dir, seed):
    make_config, model_class, storage_dtype = MODELS[name]
    for attempt in range(20):
        generator = torch.Generator().manual_seed(seed + attempt)
        config = make_config()
        config._attn_implementation = "eager"  # the textbook path; fp32 on the CPU
        model = model_class(config).float().eval()
        randomize(model, generator)
        # Round the weights to the storage type and compute with exactly those values in fp32.
        # Parameters only: model.to(dtype) would round the rotary inv_freq buffer as well, which
        # a model loaded from the checkpoint recomputes in fp32.
        with torch.no_grad():
            for param in model.parameters():
                param.copy_(param.to(storage_dtype).float())
        prompt = torch.randint(3, config.vocab_size, (1, PROMPT_LEN), generator=generator)
        with torch.no_grad():
            out = model(input_ids=prompt, use_cache=True)
            tokens, margin = greedy_by_hand(model, prompt)
            final_margin = torch.topk(out.logits[0, -1], 2).values
            margin = min(margin, float(final_margin[0] - final_margin[1]))
        if margin >= MIN_MARGIN:
            break
        print(f"{name}: seed {seed + attempt} has a top-2 margin of {margin:.2e}, trying another")
    else:
        sys.exit(f"{name}: no seed gave a greedy margin of at least {MIN_MARGIN}")

    model.generation_config.eos_token_id = None  # never stop early: always NEW_TOKENS tokens
    with torch.no_grad():
        generation_config = transformers.GenerationConfig(
            max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0
        )
        generated = model.generate(
            prompt, generation_config=generation_config, attention_mask=torch.ones_like(prompt)
        )
    generate_tokens = generated[0, PROMPT_LEN:].tolist()
    if generate_tokens != tokens:
        sys.exit(f"{name}: model.generate gave {generate_tokens}, forwards gave {tokens}")

    directory = os.path.join(out_dir, name)
    os.makedirs(directory, exist_ok=True)
    copy.deepcopy(model).to(storage_dtype).save_pretrained(directory)
    check_reload(model_class, directory, prompt, out.logits)
    for leftover in ("generation_config.json",):
        path = os.path.join(directory, leftover)
        if os.path.exists(path):
            os.remove(path)

    positions = sorted({0, 1, PROMPT_LEN // 2, PROMPT_LEN - 2, PROMPT_LEN - 1})
    tensors = {"logits": out.logits[0].float().contiguous()}
    for layer in range(config.num_hidden_layers):
        keys, values = kv_of_layer(out.past_key_values, layer)
        tensors[f"layers.{layer}.keys"] = side_by_side(keys.float(), positions)
        tensors[f"layers.{layer}.values"] = side_by_side(values.float(), positions)
    save_file(tensors, os.path.join(directory, "golden.safetensors"))

    summary = {
        "model": name,
        "architecture": model_class.__name__,
        "storage_dtype": str(storage_dtype).replace("torch.", ""),
        "prompt": prompt[0].tolist(),
        "kv_positions": positions,
        "first_token": int(torch.argmax(out.logits[0, -1])),
        "continuation": tokens,
        "min_top2_margin": margin,
        "seed": seed + attempt,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    with open(os.path.join(directory, "golden.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(f"{name}: first token {summary['first_token']}, continuation {tokens}, "
          f"margin {margin:.3f}, files {sorted(os.listdir(directory))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder to write <model>/ folders into")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    args = parser.parse_args()
    torch.set_num_threads(1)  # deterministic reductions on the CPU
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    for name in args.models.split(","):
        make_one(name, args.out, args.seed)


if __name__ == "__main__":
    main()
