#!/usr/bin/env python3
"""Ring-allreduce cost per step: the tables of docs/distributed.md, "Cost model".

T_comm(N) = 2 (N - 1) / N * G / beta + k * 2 (N - 1) * alpha
G: gradient bytes (4 per float parameter), beta: link bandwidth (bytes/s), alpha = 5 us per
message, k: allreduces per step (one per bucket: one for the VAEs, two for the DCGAN: D's gradients
after the D step, G's after the G step). Weak scaling (batch per machine fixed):
E = T_c / (T_c + T_comm), speed-up over one machine S = N E; best overlap hides up to T_bwd.
"""
models = {  # name: (float parameters, allreduces per step, T_c 1 thread, T_c 2 threads [s], backward share)
    "mlp_vae": (1091920, 1, 9.84e-3, 5.33e-3, 0.53),
    "conv_vae": (370945, 1, 39.5e-3, 22.4e-3, 0.62),
    "dcgan": (691330, 2, 253.4e-3, 141.3e-3, None),
}
alpha = 5e-6
gbits = [1, 10, 100]
Ns = [2, 4, 8, 16, 32, 64]
for name, (params, k, tc1, tc2, bshare) in models.items():
    G = 4 * params
    print(f"\n#### {name}: {params:,} parameters, G = {G:,} bytes ({G / 2**20:.2f} MiB), {k} allreduce(s) per step;"
          f" T_c = {tc1*1e3:.1f} ms (1 thread), {tc2*1e3:.1f} ms (2 threads)")
    print("| N | latency 2(N-1)·α·k | " + " | ".join(f"{g} Gbit/s: T_comm, E, S" for g in gbits) +
          (" | 10 Gbit/s, best overlap: E |" if bshare else " |"))
    print("|---|---|" + "---|" * len(gbits) + ("---|" if bshare else ""))
    for N in Ns:
        cells = []
        for g in gbits:
            bw = g * 1e9 / 8
            t = 2 * (N - 1) / N * G / bw + k * 2 * (N - 1) * alpha
            e = tc2 / (tc2 + t)
            cells.append(f"{t * 1e3:.2f} ms, {e * 100:.0f} %, ×{N * e:.1f}")
        extra = ""
        if bshare:
            t10 = 2 * (N - 1) / N * G / 1.25e9 + k * 2 * (N - 1) * alpha
            exposed = max(0.0, t10 - bshare * tc2)
            extra = f" {tc2 / (tc2 + exposed) * 100:.0f} % |"
        print(f"| {N} | {k * 2 * (N - 1) * alpha * 1e3:.2f} ms | " + " | ".join(cells) + " |" + extra)
