#!/usr/bin/env python3
"""PyTorch-CUDA reference for `npm run bench -- gpu`: fp32 SGEMM GFLOP/s (cuBLAS, TF32 off) at the
given sizes, and the time of VGG-16 training steps (CIFAR-10 variant, batch norm) at batch 128 on
random data. Benchmark only; the project never depends on PyTorch. Prints one JSON object, with
"cuda": false where PyTorch or a CUDA device is missing."""
import json
import os
import sys
import time


def main():
    sizes = [int(s) for s in sys.argv[1].split(",")]
    steps = int(sys.argv[2])
    try:
        import torch
        import torch.nn as nn
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_train import sgd_step, vgg16  # the same network and step as the CPU reference
    except ImportError:
        print(json.dumps({"cuda": False, "why": "PyTorch is not installed"}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({"cuda": False, "why": "PyTorch has no CUDA device"}))
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    gemm = {}
    for n in sizes:
        a = torch.rand(n, n, device=dev)
        b = torch.rand(n, n, device=dev)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        reps = max(3, int(2e11 / (2 * n ** 3)))
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        torch.cuda.synchronize()
        gemm[str(n)] = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    model = vgg16().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(128, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (128,), device=dev)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        return sgd_step(model, opt, loss_fn, x, y).item()  # the CPU reads the loss each step, as ours does

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    print(json.dumps({"cuda": True, "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "gemm_gflops": gemm,
                      "vgg_ms_per_step": (time.perf_counter() - t) * 1000 / steps}))


if __name__ == "__main__":
    main()
