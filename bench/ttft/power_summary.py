#!/usr/bin/env python3
"""Summarizes nvidia-smi samples (deploy/gpu/gpu.sh run power): SM clock and power while
the GPU works (samples above 300 W), and the clock event reasons seen (0x4: software power cap).
Usage: power_summary.py SAMPLES.csv [...]"""
import csv
import sys


def summarize(path):
    rows = [r for r in csv.reader(open(path)) if len(r) >= 7 and r[0] != "timestamp"]
    busy = [r for r in rows if float(r[3].split()[0]) > 300]
    if not busy:
        return f"{path}: no sample above 300 W"
    clocks = sorted(float(r[1].split()[0]) for r in busy)
    watts = sorted(float(r[3].split()[0]) for r in busy)
    reasons = {}
    for r in busy:
        reasons[r[6].strip()] = reasons.get(r[6].strip(), 0) + 1
    return (f"{path}: {len(busy)} samples above 300 W: SM clock median {clocks[len(clocks) // 2]:.0f}"
            f" MHz (min {clocks[0]:.0f}, max {clocks[-1]:.0f}), power median"
            f" {watts[len(watts) // 2]:.0f} W (max {watts[-1]:.0f}, limit {busy[0][4].strip()}),"
            f" clock event reasons {reasons}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        print(summarize(path))
