#!/usr/bin/env python3
"""PyTorch's naive sampling loop on the reference PixelCNN (the `pixelcnn` workload of
shared/ref/common.py): the whole network once per pixel, as a PyTorch user writes it. The
counterpart of benchmarks/bench_sampling (run both in one session, alternately).

usage: pixelcnn_sampling_torch.py [--threads N] [--batch 64] [--naive-rows R] [--compile]

The loop's cost is the same for every pixel (one full forward pass in no_grad), so it is timed over
the first R rows and scaled by 28 / R (R = 28: all of it). Prints one JSON line: batch, threads,
naive_s (for all 784 pixels), naive_rows_timed, torch version.
Environment: GENMOD_REF_DIR (default <repo>/../shared/ref).
"""
import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--naive-rows", type=int, default=28)
    ap.add_argument("--compile", action="store_true", help="torch.compile the network first")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    ref = os.environ.get("GENMOD_REF_DIR", os.path.join(here, "..", "..", "shared", "ref"))
    sys.path.insert(0, ref)
    import common  # noqa: E402

    common.setup_threads(a.threads)
    torch = common.import_torch(a.threads)
    torch.manual_seed(0)
    models, _, _, _ = common.build(torch, "pixelcnn")
    net = models["model"].eval()
    if a.compile:
        net = torch.compile(net)
    x = torch.zeros(a.batch, 1, 28, 28)
    with torch.no_grad():
        net(x)  # warm-up (and compilation)
        t0 = time.perf_counter()
        for i in range(a.naive_rows):
            for j in range(28):
                logits = net(x)[:, :, i, j]
                k = torch.multinomial(torch.softmax(logits, 1), 1).squeeze(1)
                x[:, 0, i, j] = k.float() / 255.0
        t = time.perf_counter() - t0
    print(json.dumps({"model": "pixelcnn", "framework": "torch " + torch.__version__, "batch": a.batch,
                      "threads": a.threads, "compile": a.compile, "naive_s": t * 28 / a.naive_rows,
                      "naive_rows_timed": a.naive_rows}))


if __name__ == "__main__":
    main()
