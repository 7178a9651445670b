#!/usr/bin/env python3
"""PyTorch-CUDA reference for `npm run bench -- gpu`: fp32 SGEMM GFLOP/s (cuBLAS, TF32 off) at the
given sizes, and the time of VGG-16 training steps (CIFAR-10 variant, batch norm) at batch 128 on
random data. Benchmark only; the project never depends on PyTorch. Prints one JSON object, with
"cuda": false where PyTorch or a CUDA device is missing."""
import json
import sys
import time


def main():
    sizes = [int(s) for s in sys.argv[1].split(",")]
    steps = int(sys.argv[2])
    try:
        import torch
        import torch.nn as nn
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
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    layers, c = [], 3
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
        if i in (1, 3, 6, 9, 12):
            layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 10)]
    model = nn.Sequential(*layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(128, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (128,), device=dev)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()  # the CPU reads the loss each step, as ours does

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
