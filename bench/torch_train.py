#!/usr/bin/env python3
"""PyTorch reference for `npm run bench -- train`: the time of one training step (forward, backward,
SGD update) of the same network at the same batch, on the CPU, all cores. Benchmark only; the project
never depends on PyTorch. Prints one JSON object."""
import json
import sys
import time

import torch
import torch.nn as nn


def lenet():
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def dbn():
    return nn.Sequential(nn.Linear(784, 500), nn.Sigmoid(), nn.Linear(500, 500), nn.Sigmoid(), nn.Linear(500, 2000), nn.Sigmoid(),
                         nn.Linear(2000, 10))


def vgg16():
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    pool_after = {1, 3, 6, 9, 12}
    layers, c = [], 3
    for i, w in enumerate(widths):
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
        if i in pool_after:
            layers.append(nn.MaxPool2d(2))
    layers += [nn.Flatten(), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 10)]
    return nn.Sequential(*layers)


def sgd_step(model, opt, loss_fn, x, y):
    """one training step: forward, loss, backward, SGD update; returns the loss tensor"""
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def main():
    model_name, batch, iters, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = {"lenet5": lenet, "dbn": dbn, "vgg16": vgg16}[model_name]()
    shape = {"lenet5": (batch, 1, 28, 28), "dbn": (batch, 784), "vgg16": (batch, 3, 32, 32)}[model_name]
    x = torch.rand(shape)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        sgd_step(model, opt, loss_fn, x, y)

    for _ in range(2):
        step()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({"model": model_name, "batch": batch, "ms_per_step": sum(times) / len(times), "ms_min": times[0],
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
