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

Models (odd sizes: vocab not a power of two, hidden not always heads * head_dim,
though transformers wants it a multiple of the heads):
  llama_mha      LlamaForCausalLM, 2 heads = 2 KV heads of 48, linear rope scaling, untied, fp32
  llama_gqa      LlamaForCausalLM, 4 heads / 2 KV heads of 48, llama3 rope scaling, tied, bf16
  falcon_mqa     FalconForCausalLM (Falcon-7B layout: multi_query, parallel_attn, LayerNorm with
                 bias, GELU), 3 heads of 48, untied, fp16
  llama_gqa64    LlamaForCausalLM, 1 layer, 8 heads / 2 KV heads of 64 (hidden 48 < 8 * 64),
                 tied, bf16
  llama_gqa96    LlamaForCausalLM, 1 layer, 6 heads / 2 KV heads of 96 (hidden 48), llama3
                 scaling, tied, bf16
  falcon_mqa64   FalconForCausalLM, 1 layer, multi_query, parallel_attn, 2 heads of 64, tied,
                 fp16
  llama_tied     LlamaForCausalLM, 2 heads = 2 KV heads of 32, tied, bf16, 4096 positions; also
                 the LONG reference (below) on a 2011-token prompt
  mistral_window MistralForCausalLM, 1 layer, 4 heads / 1 KV head of 16, sliding_window 48
                 (the prompt and its continuation, 37 positions, stay inside it), tied, bf16
Falcon's new_decoder_architecture (Falcon-40B/180B) is not among them: the loader refuses it.

The long reference (models with a long prompt length, llama_tied) lives beside the short one:
  OUT/<name>/long.safetensors                  f32 tensors:
      logits                 [len(logit_positions), vocab]  logits at a few prompt positions
                                                            (spread over it, and the last four)
      layers.<L>.keys        [len(kv_positions), kv_heads * head_dim]
      layers.<L>.values      [len(kv_positions), kv_heads * head_dim]
  OUT/<name>/long.json                         prompt ids, logit_positions, kv_positions, the
                                               greedy continuation, the smallest margin, versions
Only those rows are kept so that the folder stays small; the whole tests/data/golden is about
5.4 MB, most of it the first three checkpoints (hence the small vocabularies and hidden sizes of the later
models, stored in bf16/fp16).

Requires torch and transformers (written against transformers 5.17, torch 2.11); the models
are tiny and run on the CPU. Rerun from the repository root with:
  python3 tools/golden/make_golden.py --out tests/data/golden
or, on another machine that has torch and transformers, write to a scratch folder there
  python3 tools/golden/make_golden.py --out /tmp/golden && tar czf golden.tgz -C /tmp golden
and unpack golden.tgz into tests/data/. The outputs are deterministic for a given torch version
(seeded CPU generator, one thread: a rerun with transformers 5.17 and torch 2.11 rewrites the
same bytes); keep them near 5 MB in all (du -sh tests/data/golden), then run golden_test. Options: --models llama_gqa (a subset), --seed N (the first seed tried).
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
# The long reference: a prompt of this many tokens, the logits of a few positions and K/V of a
# few rows (all of them would be megabytes).
LONG_PROMPT_LEN = 2011
LONG_LOGIT_POSITIONS = [0, 1, 63, 64, 500, 1000, 1337, 1800, 2007, 2008, 2009, 2010]
LONG_KV_POSITIONS = [0, 777, 1500, 2010]
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


def llama_gqa64_config():
    return transformers.LlamaConfig(
        vocab_size=301,
        hidden_size=48,
        intermediate_size=72,
        num_hidden_layers=1,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        **rope_kwargs(500000.0, None),
    )


def llama_gqa96_config():
    return transformers.LlamaConfig(
        vocab_size=263,
        hidden_size=48,
        intermediate_size=56,
        num_hidden_layers=1,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=96,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        **rope_kwargs(
            10000.0,
            {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
        ),
    )


def falcon_mqa64_config():
    return transformers.FalconConfig(
        vocab_size=257,
        hidden_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_kv_heads=1,
        multi_query=True,
        parallel_attn=True,
        new_decoder_architecture=False,
        alibi=False,
        bias=False,
        ffn_hidden_size=88,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=11,
        eos_token_id=11,
    )


def llama_tied_config():
    return transformers.LlamaConfig(
        vocab_size=259,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        **rope_kwargs(10000.0, None),
    )


def mistral_window_config():
    return transformers.MistralConfig(
        vocab_size=251,
        hidden_size=64,
        intermediate_size=80,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=1024,
        sliding_window=48,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        **rope_kwargs(10000.0, None),
    )


# name: (config, model class, storage dtype, length of the long prompt or None)
MODELS = {
    "llama_mha": (llama_mha_config, transformers.LlamaForCausalLM, torch.float32, None),
    "llama_gqa": (llama_gqa_config, transformers.LlamaForCausalLM, torch.bfloat16, None),
    "falcon_mqa": (falcon_mqa_config, transformers.FalconForCausalLM, torch.float16, None),
    "llama_gqa64": (llama_gqa64_config, transformers.LlamaForCausalLM, torch.bfloat16, None),
    "llama_gqa96": (llama_gqa96_config, transformers.LlamaForCausalLM, torch.bfloat16, None),
    "falcon_mqa64": (falcon_mqa64_config, transformers.FalconForCausalLM, torch.float16, None),
    "llama_tied": (
        llama_tied_config,
        transformers.LlamaForCausalLM,
        torch.bfloat16,
        LONG_PROMPT_LEN,
    ),
    "mistral_window": (
        mistral_window_config,
        transformers.MistralForCausalLM,
        torch.bfloat16,
        None,
    ),
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


def reference(model, prompt):
    """One forward with the cache, the greedy continuation, and the smallest top-2 margin."""
    with torch.no_grad():
        out = model(input_ids=prompt, use_cache=True)
        tokens, margin = greedy_by_hand(model, prompt)
        final = torch.topk(out.logits[0, -1], 2).values
    return out, tokens, min(margin, float(final[0] - final[1]))


def check_generate(name, model, prompt, tokens):
    """model.generate (cached decoding) must give the continuation the full forwards gave."""
    with torch.no_grad():
        generation_config = transformers.GenerationConfig(
            max_new_tokens=NEW_TOKENS, do_sample=False, eos_token_id=None, pad_token_id=0
        )
        generated = model.generate(
            prompt, generation_config=generation_config, attention_mask=torch.ones_like(prompt)
        )
    generate_tokens = generated[0, prompt.shape[1]:].tolist()
    if generate_tokens != tokens:
        sys.exit(f"{name}: model.generate gave {generate_tokens}, forwards gave {tokens}")


def write_reference(directory, stem, config, out, logit_positions, kv_positions, summary):
    """<stem>.safetensors (logits at logit_positions, or all; K/V rows) and <stem>.json."""
    logits = out.logits[0].float()
    if logit_positions is not None:
        logits = logits[logit_positions]
    tensors = {"logits": logits.contiguous()}
    for layer in range(config.num_hidden_layers):
        keys, values = kv_of_layer(out.past_key_values, layer)
        tensors[f"layers.{layer}.keys"] = side_by_side(keys.float(), kv_positions)
        tensors[f"layers.{layer}.values"] = side_by_side(values.float(), kv_positions)
    save_file(tensors, os.path.join(directory, stem + ".safetensors"))
    with open(os.path.join(directory, stem + ".json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


def make_one(name, out_dir, seed):
    make_config, model_class, storage_dtype, long_len = MODELS[name]
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
        out, tokens, margin = reference(model, prompt)
        long = None
        if long_len is not None and margin >= MIN_MARGIN:
            long_prompt = torch.randint(3, config.vocab_size, (1, long_len), generator=generator)
            long = (long_prompt,) + reference(model, long_prompt)
            margin = min(margin, long[3])
        if margin >= MIN_MARGIN:
            break
        print(f"{name}: seed {seed + attempt} has a top-2 margin of {margin:.2e}, trying another")
    else:
        sys.exit(f"{name}: no seed gave a greedy margin of at least {MIN_MARGIN}")

    model.generation_config.eos_token_id = None  # never stop early: always NEW_TOKENS tokens
    check_generate(name, model, prompt, tokens)
    if long is not None:
        check_generate(name + " (long)", model, long[0], long[2])

    directory = os.path.join(out_dir, name)
    os.makedirs(directory, exist_ok=True)
    copy.deepcopy(model).to(storage_dtype).save_pretrained(directory)
    check_reload(model_class, directory, prompt, out.logits)
    for leftover in ("generation_config.json",):
        path = os.path.join(directory, leftover)
        if os.path.exists(path):
            os.remove(path)

    head = {
        "model": name,
        "architecture": model_class.__name__,
        "storage_dtype": str(storage_dtype).replace("torch.", ""),
    }
    tail = {"seed": seed + attempt, "transformers": transformers.__version__,
            "torch": torch.__version__}
    positions = sorted({0, 1, PROMPT_LEN // 2, PROMPT_LEN - 2, PROMPT_LEN - 1})
    summary = dict(head)
    summary.update({
        "prompt": prompt[0].tolist(),
        "kv_positions": positions,
        "first_token": int(torch.argmax(out.logits[0, -1])),
        "continuation": tokens,
        "min_top2_margin": margin,
    })
    summary.update(tail)
    write_reference(directory, "golden", config, out, None, positions, summary)
    print(f"{name}: first token {summary['first_token']}, continuation {tokens}, "
          f"margin {margin:.3f}")

    if long is not None:
        long_prompt, long_out, long_tokens, long_margin = long
        logit_positions = [p for p in LONG_LOGIT_POSITIONS if p < long_len]
        logit_positions = sorted(set(logit_positions + list(range(long_len - 4, long_len))))
        kv_positions = sorted({p for p in LONG_KV_POSITIONS if p < long_len} | {long_len - 1})
        summary = dict(head)
        summary.update({
            "prompt": long_prompt[0].tolist(),
            "logit_positions": logit_positions,
            "kv_positions": kv_positions,
            "first_token": int(torch.argmax(long_out.logits[0, -1])),
            "continuation": long_tokens,
            "min_top2_margin": long_margin,
        })
        summary.update(tail)
        write_reference(directory, "long", config, long_out, logit_positions, kv_positions,
                        summary)
        print(f"{name}: long prompt of {long_len}: first token {summary['first_token']}, "
              f"continuation {long_tokens}, margin {long_margin:.3f}")
    print(f"{name}: files {sorted(os.listdir(directory))}")


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
