"""Bytes per rank for exact global magnitude pruning of a sharded model: radix histograms against all-gathered weights.

    PYTHONPATH=. python scripts/distributed_traffic.py [--worlds 2,4] [--tensors 16] [--side 512] [--sparsity 0.9]

Spawns one gloo process group (CPU) per world size. Each rank holds `Shard(0)` DTensors of `tensors` float32
weights of `side x side` (normal, seeded), and runs, inside `torch_backend.distributed.traffic()`:

1. `distributed.global_magnitude_masks` (histograms all-reduced; each rank writes its own part of the masks);
2. the alternative: all-gather every weight (`distributed.full_tensor`), then the single-process radix select
   (`torch_backend.kernels.global_magnitude_masks`) on the whole weights, on every rank;
3. what the training layer adds to 1. to hold whole masks on every rank: all-gather the masks as packed bits.

It checks that 1. and 2. give the same masks, bit for bit, and prints one Markdown table of bytes per rank: the
payload handed to the collectives, and the bytes sent with ring algorithms (see `torch_backend.distributed.Traffic`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker(rank, world, init, args, out):
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from torch_backend import distributed, kernels

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    g = torch.Generator().manual_seed(0)
    whole = [torch.randn(args.side, args.side, generator=g) for _ in range(args.tensors)]
    ws = [distribute_tensor(w, mesh, [Shard(0)]) for w in whole]
    rows = {}

    dist.barrier()
    start = time.perf_counter()
    with distributed.traffic() as t:
        masks = distributed.global_magnitude_masks(ws, args.sparsity)
    rows["histograms"] = (t, time.perf_counter() - start)

    dist.barrier()
    start = time.perf_counter()
    with distributed.traffic() as t:
        gathered = [distributed.full_tensor(w) for w in ws]
        reference = kernels.global_magnitude_masks(gathered, args.sparsity)
    rows["all-gather weights"] = (t, time.perf_counter() - start)

    dist.barrier()
    start = time.perf_counter()
    with distributed.traffic() as t:
        whole_masks = [distributed.full_tensor(m) for m in masks]
    rows["+ whole masks (packed bits)"] = (t, time.perf_counter() - start)

    same = all(torch.equal(a, b) for a, b in zip(whole_masks, reference, strict=True))
    if rank == 0:
        with open(out, "w") as f:
            for name, (t, seconds) in rows.items():
                f.write(f"{name}\t{len(t.calls)}\t{t.payload}\t{t.sent}\t{seconds:.3f}\t{same}\n")
    dist.destroy_process_group()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="2,4")
    parser.add_argument("--tensors", type=int, default=16)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--sparsity", type=float, default=0.9)
    args = parser.parse_args(argv)
    weights = args.tensors * args.side * args.side
    print(f"global magnitude pruning ({args.sparsity:g}) of {args.tensors} x {args.side} x {args.side} float32 "
          f"({weights * 4 / 2**20:.0f} MiB), Shard(0) DTensors, gloo on CPU; bytes per rank\n")  # fmt: skip
    print("| world | method | collectives | payload (bytes) | sent, ring (bytes) | seconds | masks equal |")
    print("|---|---|---|---|---|---|---|")
    for world in [int(w) for w in args.worlds.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "rows.tsv")
            mp.spawn(_worker, args=(world, f"file://{tmp}/rendezvous", args, out), nprocs=world, join=True)
            with open(out) as f:
                for line in f:
                    name, calls, payload, sent, seconds, same = line.rstrip("\n").split("\t")
                    print(f"| {world} | {name} | {calls} | {int(payload):,} | {int(sent):,} | {seconds} | {same} |")


if __name__ == "__main__":
    main()
