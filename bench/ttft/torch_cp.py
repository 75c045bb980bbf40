#!/usr/bin/env python3
"""Time to first token of PyTorch context parallelism (ring attention, load balanced) across the
GPUs of one host: the PyTorch peer of bench/tsp/tsp_bench and of KV-Runahead.

Every rank holds the whole random-weight bf16 Hugging Face model (Llama-2-7B, Llama-3-8B or
Falcon-7B shapes, built on the GPU from a config; rank 0's weights are broadcast so all ranks are
identical). A prefill runs inside torch.distributed.tensor.experimental.context_parallel with
input_ids and position_ids sharded on the sequence dimension (head-tail load balancing); SDPA
becomes ring attention. TTFT: the whole prompt to the last token's logits, every rank
synchronized, median of --repeat runs after warm-up.

Before timing, the script checks that it measures what it claims: every layer's attention must
go through the ring attention (counted), and the last token's logits must match a single-GPU
forward of the same prompt. Any failure is an error naming it, with a non-zero exit.

    NCCL_NVLS_ENABLE=0 torchrun --nproc-per-node 4 bench/ttft/torch_cp.py --tokens 4096,16384
"""
import os

# NVLink multicast stays off: it must be decided before NCCL initializes.
os.environ["NCCL_NVLS_ENABLE"] = "0"
os.environ.setdefault("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ORIGINAL_SDPA = F.scaled_dot_product_attention
CSV_COLUMNS = ["scheme", "model", "gpus", "tokens", "ttft_ms", "repeat"]


class CpError(RuntimeError):
    """Something that makes the measurement meaningless."""


def log(message):
    if dist.is_initialized() and dist.get_rank() != 0:
        return
    print(message, flush=True)


def cp_modules():
    """The public context manager and the module that holds its ring attention and options."""
    try:
        from torch.distributed.tensor.experimental import context_parallel
    except ImportError as error:
        raise CpError(f"torch {torch.__version__} has no context_parallel: {error}") from error
    module = None
    for name in ("torch.distributed.tensor.experimental._context_parallel._attention",
                 "torch.distributed.tensor.experimental._attention"):
        try:
            module = __import__(name, fromlist=["_templated_ring_attention"])
        except ImportError:
            continue
        if hasattr(module, "_templated_ring_attention"):
            break
        module = None
    if module is None:
        raise CpError("cannot find the context-parallel ring attention module of torch "
                      f"{torch.__version__} (needed to verify that ring attention runs)")
    return context_parallel, module


class RingCounter:
    """Counts the ring-attention calls, and which local attention op they used."""

    def __init__(self, module):
        self.module = module
        self.original = module._templated_ring_attention
        self.calls = 0
        self.ops = set()

        def counted(*args, **kwargs):
            self.calls += 1
            op = args[2] if len(args) > 2 else kwargs.get("op")
            self.ops.add(str(op))
            return self.original(*args, **kwargs)

        module._templated_ring_attention = counted

    def reset(self):
        self.calls = 0
        self.ops = set()


def reset_cp_state(module):
    """Undoes what context_parallel leaves behind when its body raised (it has no finally)."""
    current = F.scaled_dot_product_attention
    if current is not ORIGINAL_SDPA:
        restore = getattr(module, "_restore_function", None)
        if restore is not None:
            restore(current, F)
        F.scaled_dot_product_attention = ORIGINAL_SDPA
    disable = getattr(module, "_disable_cp_dtensor_dispatcher", None)
    if disable is not None:
        disable()


@contextlib.contextmanager
def kv_heads_adapter(mode):
    """Wraps whatever F.scaled_dot_product_attention is now (context parallel's dispatcher inside
    its context) so that grouped/multi-query K/V reach it either expanded to the query heads
    ('expand': plain tensors, every SDPA backend takes them) or with enable_gqa ('native')."""
    inner = F.scaled_dot_product_attention

    def sdpa(query, key, value, *args, **kwargs):
        if key.shape[1] != query.shape[1]:
            if mode == "expand":
                kwargs.pop("enable_gqa", None)
                groups = query.shape[1] // key.shape[1]
                key = key.repeat_interleave(groups, dim=1)
                value = value.repeat_interleave(groups, dim=1)
            else:
                kwargs["enable_gqa"] = True
        elif mode == "expand":
            kwargs.pop("enable_gqa", None)
        return inner(query, key, value, *args, **kwargs)

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = inner


def make_config(name, max_positions):
    if name in ("llama2-7b", "llama3-8b"):
        from transformers import LlamaConfig
        llama3 = name == "llama3-8b"
        rope = ({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                 "original_max_position_embeddings": 8192}
                if llama3 else {"rope_type": "default", "rope_theta": 10000.0})
        return LlamaConfig(hidden_size=4096, intermediate_size=14336 if llama3 else 11008,
                           num_hidden_layers=32, num_attention_heads=32,
                           num_key_value_heads=8 if llama3 else 32,
                           vocab_size=128256 if llama3 else 32000,
                           max_position_embeddings=max(max_positions, 131072 if llama3 else 4096),
                           rms_norm_eps=1e-5, rope_parameters=rope, tie_word_embeddings=False)
    if name == "falcon-7b":
        from transformers import FalconConfig
        return FalconConfig(vocab_size=65024, hidden_size=4544, num_hidden_layers=32,
                            num_attention_heads=71, multi_query=True, parallel_attn=True,
                            new_decoder_architecture=False, alibi=False, bias=False,
                            layer_norm_epsilon=1e-5,
                            max_position_embeddings=max(max_positions, 2048),
                            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                            tie_word_embeddings=False)
    raise CpError(f"unknown model '{name}' (llama2-7b, llama3-8b, falcon-7b)")


def make_model(config, seed, device="cuda", dtype=torch.bfloat16):
    import transformers
    if config.model_type == "falcon":
        import transformers.models.falcon.modeling_falcon as falcon
        # Falcon always materializes its causal mask (for ALiBi); with rotary embeddings the mask
        # is plain causal, and SDPA's is_causal=True is what context parallelism needs.
        falcon.create_causal_mask = lambda *args, **kwargs: None
        model_class = transformers.FalconForCausalLM
    else:
        model_class = transformers.LlamaForCausalLM
    torch.manual_seed(seed)
    with torch.device(device):
        try:
            model = model_class._from_config(config, attn_implementation="sdpa", dtype=dtype)
        except TypeError:
            model = model_class._from_config(config, attn_implementation="sdpa",
                                             torch_dtype=dtype)
    model.eval().requires_grad_(False)
    if model.config._attn_implementation != "sdpa":
        raise CpError(f"the model runs attention '{model.config._attn_implementation}', "
                      "not sdpa: context parallelism would not see it")
    # Identical weights on every rank, whatever the generators did.
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)
    if device == "cuda":
        torch.cuda.synchronize()
    return model


class Runner:
    def __init__(self, args, model, mesh, context_parallel, module, counter):
        self.args = args
        self.model = model
        self.mesh = mesh
        self.context_parallel = context_parallel
        self.module = module
        self.counter = counter
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.layers = model.config.num_hidden_layers
        self.backend = None  # SDPBackend list
        self.gqa = args.gqa

    def prompt(self, n):
        generator = torch.Generator(device="cpu").manual_seed(n)
        ids = torch.randint(0, self.model.config.vocab_size, (1, n), generator=generator)
        return ids.cuda(), torch.arange(n, device="cuda").unsqueeze(0)

    def locate_last_token(self, positions, n):
        """(rank holding position n-1 after sharding, what to pass as logits_to_keep there)."""
        probe = positions.clone()
        with self.context_parallel(self.mesh, buffers=[probe], buffer_seq_dims=[1],
                                   no_restore_buffers={probe}):
            pass
        hit = (probe[0] == n - 1).nonzero()
        index = int(hit[0, 0]) if hit.numel() else -1
        holder = torch.tensor([self.rank if index >= 0 else -1], device="cuda")
        dist.all_reduce(holder, op=dist.ReduceOp.MAX)
        holder = int(holder.item())
        if holder < 0:
            raise CpError(f"no rank holds position {n - 1} after sharding {n} tokens")
        if self.rank != holder:
            return holder, 1
        keep = 1 if index == probe.shape[1] - 1 else torch.tensor([index], device="cuda")
        return holder, keep

    def single_gpu_logits(self, ids, positions):
        from torch.nn.attention import sdpa_kernel
        with torch.no_grad(), kv_heads_adapter(self.gqa), sdpa_kernel(self.backend):
            out = self.model(input_ids=ids, position_ids=positions, use_cache=True,
                             logits_to_keep=1)
        logits = out.logits[0, -1].float().clone()
        del out
        return logits

    def cp_prefill(self, ids, positions, keep):
        """One context-parallel prefill; returns (ms, this rank's last-row logits)."""
        from torch.nn.attention import sdpa_kernel
        ids = ids.clone()
        positions = positions.clone()
        self.counter.reset()
        dist.barrier()
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            with self.context_parallel(self.mesh, buffers=[ids, positions],
                                       buffer_seq_dims=[1, 1],
                                       no_restore_buffers={ids, positions}):
                with kv_heads_adapter(self.gqa), sdpa_kernel(self.backend):
                    out = self.model(input_ids=ids, position_ids=positions, use_cache=True,
                                     logits_to_keep=keep)
            logits = out.logits[0, -1]
            torch.cuda.synchronize()
        dist.barrier()
        elapsed = (time.perf_counter() - start) * 1e3
        if self.counter.calls != self.layers:
            raise CpError(f"rank {self.rank}: {self.counter.calls} of {self.layers} attention "
                          "calls went through context-parallel ring attention")
        logits = logits.float().clone()
        del out
        return elapsed, logits

    def all_ok(self, ok):
        flag = torch.tensor([1 if ok else 0], device="cuda")
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def check(self, reference, n):
        """Compares the CP logits of the last token with the single-GPU ones."""
        ids, positions = self.prompt(n)
        holder, keep = self.locate_last_token(positions, n)
        _, logits = self.cp_prefill(ids, positions, keep)
        error, same = 0.0, True
        if self.rank == holder:
            error = float((logits - reference).norm() / reference.norm())
            same = int(logits.argmax()) == int(reference.argmax())
        # Random-weight logits are near ties, so the argmax is reported, not required; bf16
        # drift over 32 layers reaches a few percent, a broken ring is off by order 1.
        ok = self.rank != holder or error <= self.args.tolerance
        summary = torch.tensor([error, 1.0 if same else 0.0], device="cuda")
        dist.broadcast(summary, src=holder)
        return self.all_ok(ok), float(summary[0]), bool(summary[1] > 0.5)

    def time_length(self, n, warmup, repeats):
        ids, positions = self.prompt(n)
        holder, keep = self.locate_last_token(positions, n)
        times = []
        for i in range(warmup + repeats):
            ms, _ = self.cp_prefill(ids, positions, keep)
            slowest = torch.tensor([ms], device="cuda", dtype=torch.float64)
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
            if i >= warmup:
                times.append(float(slowest.item()))
        torch.cuda.empty_cache()
        return times, holder


def backend_list(name):
    from torch.nn.attention import SDPBackend
    table = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION}
    return [table[name]]


def set_rotate(module, name):
    setter = getattr(module, "set_rotate_method", None)
    if setter is None:
        raise CpError("this torch has no set_rotate_method")
    setter(name)


def choose(runner, args, module, reference):
    """Checks every (SDPA backend, rotate method) asked for, times those that pass at a probe
    length, and keeps the fastest."""
    backends = ["cudnn", "flash", "efficient"] if args.sdpa_backend == "auto" else [args.sdpa_backend]
    rotates = ["allgather", "alltoall"] if args.rotate == "auto" else [args.rotate]
    probe = args.probe_tokens
    candidates = [(backend, rotate) for backend in backends for rotate in rotates]
    results = []
    for backend, rotate in candidates:
        runner.backend = backend_list(backend)
        set_rotate(module, rotate)
        try:
            ok, error, same = runner.check(reference, args.check_tokens)
        except CpError:
            raise
        except Exception as failure:  # an SDPA backend or rotation this build refuses
            reset_cp_state(module)
            torch.cuda.synchronize()
            log(f"  {backend:9s} {rotate:9s} unusable: {type(failure).__name__}: "
                f"{str(failure).splitlines()[0] if str(failure) else ''}")
            continue
        ops = sorted(runner.counter.ops)
        log(f"  {backend:9s} {rotate:9s} check at {args.check_tokens} tokens: rel. error "
            f"{error:.3e}, argmax {'equal' if same else 'DIFFERENT'}: "
            f"{'ok' if ok else 'WRONG, not used'}; ring ops {ops}")
        if not ok:
            continue
        median = float("nan")
        if len(candidates) > 1:
            times, _ = runner.time_length(probe, 1, 2)
            median = statistics.median(times)
            log(f"  {backend:9s} {rotate:9s} probe {probe} tokens: {median:.1f} ms")
        results.append((median, backend, rotate, ops))
    if not results:
        raise CpError("no SDPA backend / rotate method both ran and matched the single-GPU "
                      f"logits under context parallelism (tolerance {args.tolerance})")
    results.sort(key=lambda r: r[0])
    return results[0]


def append_csv(path, rows):
    fresh = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if fresh:
            writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="llama2-7b", choices=["llama2-7b", "llama3-8b",
                                                                  "falcon-7b"])
    parser.add_argument("--tokens", default="4096,16384,32768")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csv", default="", help="append scheme,model,gpus,tokens,ttft_ms,repeat")
    parser.add_argument("--json", default="", help="append one JSON line per length")
    parser.add_argument("--sdpa-backend", default="auto",
                        choices=["auto", "cudnn", "flash", "efficient"])
    parser.add_argument("--rotate", default="auto", choices=["auto", "allgather", "alltoall"])
    parser.add_argument("--gqa", default="expand", choices=["expand", "native"],
                        help="grouped K/V heads: repeated before SDPA, or SDPA's enable_gqa")
    parser.add_argument("--check-tokens", type=int, default=2048)
    parser.add_argument("--probe-tokens", type=int, default=16384,
                        help="length at which --sdpa-backend/--rotate auto compare candidates")
    parser.add_argument("--tolerance", type=float, default=0.1,
                        help="largest relative L2 error of the last token's logits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout-s", type=int, default=900, help="NCCL collective timeout")
    args = parser.parse_args()
    args.lengths = [int(x) for x in args.tokens.split(",") if x]
    return args


def main():
    args = parse_args()
    if "LOCAL_RANK" not in os.environ:
        raise CpError("run under torchrun --nproc-per-node P")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank),
                            timeout=datetime.timedelta(seconds=args.timeout_s))
    world = dist.get_world_size()
    from torch.distributed.device_mesh import init_device_mesh
    mesh = init_device_mesh("cuda", (world,), mesh_dim_names=("cp",))

    context_parallel, module = cp_modules()
    options = getattr(module, "_cp_options", None)
    if options is None or not hasattr(options, "enable_load_balance"):
        raise CpError("this torch's context parallelism has no load-balance option")
    options.enable_load_balance = True
    args.probe_tokens = min(max(args.lengths), args.probe_tokens)
    for n in args.lengths + [args.check_tokens, args.probe_tokens]:
        if n % (2 * world) != 0:
            raise CpError(f"{n} tokens do not split into {2 * world} equal chunks "
                          "(load-balanced context parallelism)")
    counter = RingCounter(module)

    import transformers
    start = time.perf_counter()
    config = make_config(args.model, max(args.lengths + [args.check_tokens]))
    model = make_model(config, args.seed)
    device = torch.cuda.get_device_name()
    nccl = torch.cuda.nccl.version()
    nccl = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
    log(f"torch-cp: torch {torch.__version__}, transformers {transformers.__version__}, NCCL "
        f"{nccl}, {world} x {device}; {args.model} "
        f"(random bf16) on every GPU in {time.perf_counter() - start:.1f} s; load balance on, "
        f"GQA {args.gqa}, NCCL_NVLS_ENABLE={os.environ.get('NCCL_NVLS_ENABLE')}")

    runner = Runner(args, model, mesh, context_parallel, module, counter)
    ids, positions = runner.prompt(args.check_tokens)
    runner.backend = backend_list("flash" if args.sdpa_backend in ("auto", "flash")
                                  else args.sdpa_backend)
    try:
        reference = runner.single_gpu_logits(ids, positions)
    except Exception:  # the chosen backend may refuse the unsharded shape; any will do here
        from torch.nn.attention import SDPBackend
        runner.backend = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                          SDPBackend.MATH]
        reference = runner.single_gpu_logits(ids, positions)
    log(f"single-GPU reference at {args.check_tokens} tokens ready; candidates:")
    best_ms, backend, rotate, ops = choose(runner, args, module, reference)
    runner.backend = backend_list(backend)
    set_rotate(module, rotate)
    log(f"selected SDPA backend {backend}, rotate method {rotate} (ring ops {ops})")

    log(f"{'tokens':<8} {'ttft_ms':>10} {'min_ms':>10}")
    for n in args.lengths:
        times, holder = runner.time_length(n, args.warmup, args.repeat)
        ttft = statistics.median(times)
        log(f"{n:<8} {ttft:10.1f} {min(times):10.1f}")
        record = {"peer": "torch-cp", "model": args.model, "gpus": world, "tokens": n,
                  "ttft_ms": ttft, "min_ms": min(times), "times_ms": times,
                  "sdpa_backend": backend, "rotate": rotate, "load_balance": True,
                  "gqa": args.gqa, "ring_ops": ops, "last_token_rank": holder, "device": device,
                  "torch": torch.__version__, "transformers": transformers.__version__}
        if dist.get_rank() == 0:
            print(json.dumps(record), flush=True)
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps(record) + "\n")
            if args.csv:
                append_csv(args.csv, [["torch-cp", args.model, world, n, f"{t:.3f}", i]
                                      for i, t in enumerate(times)])
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    try:
        main()
    except CpError as error:
        rank = os.environ.get("RANK", "?")
        print(f"torch_cp.py rank {rank}: error: {error}", file=sys.stderr, flush=True)
        os._exit(1)
    except Exception:
        rank = os.environ.get("RANK", "?")
        print(f"torch_cp.py rank {rank}: failed:", file=sys.stderr, flush=True)
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
