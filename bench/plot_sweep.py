#!/usr/bin/env python3
"""Plots TTFT sweeps: reads CSV files with the columns scheme,model,gpus,tokens,ttft_ms (more,
such as repeat, are ignored) from tsp_bench, torch_cp.py or any other peer, takes the median over
repeated rows, and writes for every (model, GPU count):

  ttft_<model>_<gpus>gpu.png     TTFT against context length, one line per scheme;
  speedup_<model>_<gpus>gpu.png  speedup over the baseline scheme (default tsp-paper) at each
                                 length, one bar per scheme, as in the KV-Runahead paper.

It also prints the medians and speedups as a table.

    python3 bench/plot_sweep.py out/tsp.csv out/torch_cp.csv --out plots/
"""
import argparse
import collections
import csv
import os
import statistics
import sys

REQUIRED = ("scheme", "model", "gpus", "tokens", "ttft_ms")


def read_rows(paths):
    """{(model, gpus): {scheme: {tokens: [ttft_ms, ...]}}} from every file."""
    data = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(list)))
    for path in paths:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise SystemExit(f"{path}: missing column(s) {', '.join(missing)} "
                                 f"(needs {','.join(REQUIRED)})")
            for line, row in enumerate(reader, start=2):
                if row["scheme"] == "scheme":  # a header repeated by concatenated files
                    continue
                try:
                    key = (row["model"], int(row["gpus"]))
                    data[key][row["scheme"]][int(row["tokens"])].append(float(row["ttft_ms"]))
                except (TypeError, ValueError) as error:
                    raise SystemExit(f"{path}:{line}: bad row {dict(row)}: {error}")
    return data


def medians(schemes):
    return {scheme: {n: statistics.median(v) for n, v in sorted(by_len.items())}
            for scheme, by_len in schemes.items()}


def ordered(schemes, baseline):
    """The baseline first, then the rest by name."""
    return sorted(schemes, key=lambda s: (s != baseline, s))


def plot_group(plt, model, gpus, table, baseline, out_dir):
    schemes = ordered(table, baseline)
    lengths = sorted({n for s in schemes for n in table[s]})
    written = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for scheme in schemes:
        xs = sorted(table[scheme])
        ax.plot(xs, [table[scheme][n] for n in xs], marker="o", label=scheme)
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths)
    ax.set_xticklabels([f"{n // 1024}k" if n % 1024 == 0 else str(n) for n in lengths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("TTFT (ms)")
    ax.set_title(f"{model}, {gpus} GPU{'s' if gpus != 1 else ''}: time to first token")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, f"ttft_{model}_{gpus}gpu.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    if baseline not in table:
        return written
    base = table[baseline]
    shown = [n for n in lengths if n in base]
    if not shown:
        return written
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    width = 0.8 / len(schemes)
    tallest = 1.0
    for i, scheme in enumerate(schemes):
        xs, ys = [], []
        for j, n in enumerate(shown):
            if n in table[scheme]:
                xs.append(j + (i - (len(schemes) - 1) / 2) * width)
                ys.append(base[n] / table[scheme][n])
        tallest = max([tallest] + ys)
        bars = ax.bar(xs, ys, width=width, label=scheme)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([f"{n // 1024}k" if n % 1024 == 0 else str(n) for n in shown])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel(f"speedup over {baseline}")
    ax.set_title(f"{model}, {gpus} GPU{'s' if gpus != 1 else ''}: TTFT speedup")
    ax.set_ylim(0, tallest * 1.3)  # room for the legend above the bars
    ax.legend(loc="upper left", ncol=min(len(schemes), 4), fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, f"speedup_{model}_{gpus}gpu.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written


def print_table(model, gpus, table, baseline):
    schemes = ordered(table, baseline)
    lengths = sorted({n for s in schemes for n in table[s]})
    print(f"\n{model}, {gpus} GPU(s): median TTFT ms (speedup over {baseline})")
    print(f"{'scheme':<16}" + "".join(f"{n:>18}" for n in lengths))
    for scheme in schemes:
        cells = []
        for n in lengths:
            if n not in table[scheme]:
                cells.append(f"{'-':>18}")
                continue
            ms = table[scheme][n]
            base = table.get(baseline, {}).get(n)
            cells.append(f"{ms:>10.1f} ({base / ms:4.2f}x)" if base else f"{ms:>18.1f}")
        print(f"{scheme:<16}" + "".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="+", help="CSV files (concatenated)")
    parser.add_argument("--out", default=".", help="folder for the PNG files")
    parser.add_argument("--baseline", default="tsp-paper", help="scheme speedups are relative to")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_rows(args.csv)
    if not data:
        raise SystemExit("no rows in " + ", ".join(args.csv))
    os.makedirs(args.out, exist_ok=True)
    for (model, gpus), schemes in sorted(data.items()):
        table = medians(schemes)
        print_table(model, gpus, table, args.baseline)
        for path in plot_group(plt, model, gpus, table, args.baseline, args.out):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
