#!/usr/bin/python3
"""PyTorch CPU implementations of the workloads benchmarks/compare-pytorch.sh times.

Written for this repository (independent of the engine) so that one meta-iteration of the same
work can be timed in this project and in PyTorch (Debian's python3-torch, oneDNN convolutions)
on the same machine, at the same thread count:

  reptile4  REPTILE 4-conv (configs/reptile-4conv-omniglot.json): 20-way, 10 train shots,
            meta-batch 5, 10 inner Adam steps (betas 0, 0.999) on batches of 20 drawn without
            replacement from the 200 support images, a query forward per task, meta SGD step.
  fomaml4   FOMAML 4-conv (configs/fomaml-4conv-omniglot.json): 20-way 1-shot, meta-batch 16,
            5 full-batch SGD steps (lr 0.1) on the 20 support images, a query forward+backward
            at the adapted weights (first-order meta-gradient), meta Adam step.
  metanas   W1, the MetaNAS search network of benchmarks/meta-step-bench (C=28, 4 cells, 3 nodes,
            stem 3C, reductions at cells 1 and 3, the 7 MetaNAS ops with conv_3x3 as
            ReLU-depthwise-pointwise-BN like the released MetaNAS code): per task 5 inner steps,
            each an architecture step then a weight step (2 forward+backward of batch 20), Adam
            (betas 0, 0.999) whose state is carried from task to task, a query forward, REPTILE
            meta update (weights 1.0, alphas 0.6).
  convops   per-op forward / backward (data + weight) milliseconds of PyTorch's CPU convolutions
            (oneDNN) on engine-bench's shapes (batch 20, --channels, 28/14/7): the oneDNN column
            of the per-op table in docs/results.md.
  sgemm     the machine's GEMM peak: float32 1024^3 matmul through numpy's BLAS (OpenBLAS).

Inputs are random (the pixels do not change the work). FLOPs are counted by hooks on every
Conv2d/Linear of one forward (2 x multiply-adds) and multiplied by 3 for forward+backward.
Prints one JSON object: {"workload", "threads", "times_s", "median_s", "gflop"}.
"""
import argparse
import itertools
import json
import os
import statistics
import sys
import time


def _early_threads():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return "1"


# OpenMP and OpenBLAS read these when they start: set them before the imports.
os.environ["OMP_NUM_THREADS"] = _early_threads()
os.environ["OPENBLAS_NUM_THREADS"] = _early_threads()

import numpy as np  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn as nn  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError:
    torch = None


# ---------------------------------------------------------------- FLOP counting
def count_forward_flops(model, x, *args):
    flops = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            flops[0] += 2 * out.numel() * k
        elif isinstance(m, nn.Linear):
            flops[0] += 2 * out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x, *args)
    for h in hs:
        h.remove()
    return flops[0]


# ---------------------------------------------------------------- 4-conv
class ConvNet4(nn.Module):
    def __init__(self, ways, ch=64):
        super().__init__()
        layers, cin = [], 1
        for _ in range(4):
            layers += [nn.Conv2d(cin, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch, track_running_stats=False),
                       nn.ReLU(), nn.MaxPool2d(2)]
            cin = ch
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, ways)

    def forward(self, x):
        return self.fc(self.body(x).flatten(1))


def reptile4_iteration(model, meta, ways=20, shots=10, batch=20, steps=10, meta_batch=5):
    n = ways * shots
    acc = [torch.zeros_like(p) for p in meta]
    for _ in range(meta_batch):
        xs, ys = torch.randn(n, 1, 28, 28), torch.arange(ways).repeat_interleave(shots)
        xq, yq = torch.randn(ways, 1, 28, 28), torch.arange(ways)
        with torch.no_grad():
            for p, m in zip(model.parameters(), meta):
                p.copy_(m)
        opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.0, 0.999))
        perm = torch.randperm(n)
        for s in range(steps):
            idx = perm[(s * batch) % n:(s * batch) % n + batch]
            opt.zero_grad()
            F.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
        with torch.no_grad():
            model(xq).argmax(1).eq(yq).float().mean()
            for a, p in zip(acc, model.parameters()):
                a.add_(p)
    with torch.no_grad():
        for m, a in zip(meta, acc):
            m.add_(a / meta_batch - m, alpha=1.0)


def fomaml4_iteration(model, meta, meta_opt, ways=20, steps=5, meta_batch=16):
    grads = [torch.zeros_like(p) for p in meta]
    for _ in range(meta_batch):
        xs, ys = torch.randn(ways, 1, 28, 28), torch.arange(ways)
        xq, yq = torch.randn(ways, 1, 28, 28), torch.arange(ways)
        with torch.no_grad():
            for p, m in zip(model.parameters(), meta):
                p.copy_(m)
        for _ in range(steps):
            model.zero_grad()
            F.cross_entropy(model(xs), ys).backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.sub_(0.1 * p.grad)
        model.zero_grad()
        F.cross_entropy(model(xq), yq).backward()
        with torch.no_grad():
            for g, p in zip(grads, model.parameters()):
                g.add_(p.grad)
    meta_opt.zero_grad()
    for m, g in zip(meta, grads):
        m.grad = g / meta_batch
    meta_opt.step()


# ---------------------------------------------------------------- MetaNAS search network (W1)
def bn(c):
    return nn.BatchNorm2d(c, affine=False, track_running_stats=False)


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), bn(cout))


class FactorizedReduce(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.a = nn.Conv2d(cin, cout // 2, 1, stride=2, bias=False)
        self.b = nn.Conv2d(cin, cout - cout // 2, 1, stride=2, bias=False)
        self.bn = bn(cout)

    def forward(self, x):
        x = F.relu(x)
        shifted = x[:, :, 1:, 1:] if x.shape[-1] % 2 == 0 else x
        return self.bn(torch.cat([self.a(x), self.b(shifted)], 1))


def dw_pw(c, stride, dil):
    return [nn.ReLU(), nn.Conv2d(c, c, 3, stride, dil, dilation=dil, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), bn(c)]


def make_op(name, c, stride):
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), bn(c))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False), bn(c))
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name == "conv_1x5_5x1":
        return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, (1, 5), (1, stride), (0, 2), bias=False),
                             nn.Conv2d(c, c, (5, 1), (stride, 1), (2, 0), bias=False), bn(c))
    if name == "conv_3x3":
        return nn.Sequential(*dw_pw(c, stride, 1))
    if name == "sep_conv_3x3":
        return nn.Sequential(*dw_pw(c, stride, 1), *dw_pw(c, 1, 1))
    if name == "dil_conv_3x3":
        return nn.Sequential(*dw_pw(c, stride, 2))
    raise ValueError(name)


OPS = ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "conv_1x5_5x1", "conv_3x3", "sep_conv_3x3", "dil_conv_3x3"]


class Cell(nn.Module):
    def __init__(self, nodes, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c)
        self.pre1 = ReLUConvBN(c_p, c)
        self.nodes = nodes
        self.edges = nn.ModuleList()
        for i in range(nodes):
            for j in range(i + 2):
                s = 2 if reduction and j < 2 else 1
                self.edges.append(nn.ModuleList([make_op(o, c, s) for o in OPS]))

    def forward(self, s0, s1, alpha, beta):
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for i in range(self.nodes):
            n = i + 2
            us = []
            for j in range(n):
                w = alpha[e]
                us.append(sum(wk * op(states[j]) for wk, op in zip(w, self.edges[e])))
                e += 1
            pairs = list(itertools.combinations(range(n), 2))
            states.append(sum(beta[i][k] * (us[a] + us[b]) for k, (a, b) in enumerate(pairs)))
        return torch.cat(states[2:], 1)


class SearchNet(nn.Module):
    def __init__(self, ways=20, c=28, layers=4, nodes=3, stem_mult=3, reductions=(1, 3)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, stem_mult * c, 3, padding=1, bias=False), nn.BatchNorm2d(stem_mult * c))
        c_pp = c_p = stem_mult * c
        self.cells = nn.ModuleList()
        red_prev = False
        self.kinds = []
        for i in range(layers):
            red = i in reductions
            self.cells.append(Cell(nodes, c_pp, c_p, c, red, red_prev))
            self.kinds.append(red)
            c_pp, c_p, red_prev = c_p, nodes * c, red
        self.fc = nn.Linear(c_p, ways)
        n_edges = sum(i + 2 for i in range(nodes))
        self.alphas = nn.ParameterList([nn.Parameter(1e-3 * torch.randn(n_edges, len(OPS))) for _ in range(2)])
        self.betas = nn.ParameterList([nn.Parameter(1e-3 * torch.randn(len(list(itertools.combinations(range(i + 2), 2)))))
                                       for _ in range(2) for i in range(nodes)])
        self.nodes = nodes

    def weights(self):
        return [p for n, p in self.named_parameters() if not n.startswith(("alphas", "betas"))]

    def arch(self):
        return list(self.alphas) + list(self.betas)

    def forward(self, x, temp=1.0):
        s0 = s1 = self.stem(x)
        for cell, red in zip(self.cells, self.kinds):
            k = int(red)
            alpha = F.softmax(self.alphas[k] / temp, -1)
            beta = [F.softmax(self.betas[k * self.nodes + i] / temp, -1) for i in range(self.nodes)]
            s0, s1 = s1, cell(s0, s1, alpha, beta)
        return self.fc(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def metanas_iteration(model, meta_w, meta_a, w_opt, a_opt, ways=20, batch=20, steps=5, meta_batch=10):
    w_acc = [torch.zeros_like(p) for p in meta_w]
    a_acc = [torch.zeros_like(p) for p in meta_a]
    for _ in range(meta_batch):
        xs, ys = torch.randn(15 * ways, 1, 28, 28), torch.arange(ways).repeat_interleave(15)
        xq, yq = torch.randn(ways, 1, 28, 28), torch.arange(ways)
        with torch.no_grad():
            for p, m in zip(model.weights(), meta_w):
                p.copy_(m)
            for p, m in zip(model.arch(), meta_a):
                p.copy_(m)
        for s in range(steps):
            temp = 1.0 + (0.05 - 1.0) * s / max(1, steps - 1)
            for opt in (a_opt, w_opt):  # architecture step, then weight step, fresh batches
                idx = torch.randint(0, xs.shape[0], (batch,))
                model.zero_grad()
                F.cross_entropy(model(xs[idx], temp), ys[idx]).backward()
                opt.step()
        with torch.no_grad():
            model(xq, 0.05).argmax(1).eq(yq).float().mean()
            for a, p in zip(w_acc, model.weights()):
                a.add_(p)
            for a, p in zip(a_acc, model.arch()):
                a.add_(p)
    with torch.no_grad():
        for m, a in zip(meta_w, w_acc):
            m.add_(a / meta_batch - m, alpha=1.0)
        for m, a in zip(meta_a, a_acc):
            m.add_(a / meta_batch - m, alpha=0.6)


# ---------------------------------------------------------------- per-op (oneDNN)
def convops(C, reps):
    specs = [("conv 3x3", (3, 3), (1, 1), 1, False), ("conv 1x5 relu", (1, 5), (0, 2), 1, True),
             ("conv 5x1", (5, 1), (2, 0), 1, False), ("dwconv 3x3 relu", (3, 3), (1, 1), C, True),
             ("pwconv 1x1", (1, 1), (0, 0), 1, False)]
    rows = []
    for S in (28, 14, 7):
        for name, k, pad, g, relu in specs:
            x = torch.randn(20, C, S, S, requires_grad=True)
            w = torch.randn(C, C // g, *k, requires_grad=True)
            fw, bw = [], []
            for r in range(reps + 2):
                t0 = time.perf_counter()
                y = F.conv2d(F.relu(x) if relu else x, w, padding=pad, groups=g)
                t1 = time.perf_counter()
                y.backward(torch.ones_like(y))
                t2 = time.perf_counter()
                if r >= 2:
                    fw.append(t1 - t0)
                    bw.append(t2 - t1)
            flop = 2 * y.numel() * (C // g) * k[0] * k[1]
            rows.append({"op": name, "shape": "20x%dx%dx%d" % (C, S, S), "fwd_ms": 1e3 * statistics.median(fw),
                         "bwd_ms": 1e3 * statistics.median(bw), "fwd_gflops": flop / 1e9 / min(fw),
                         "bwd_gflops": 2 * flop / 1e9 / min(bw)})
    return rows


# ---------------------------------------------------------------- driver
def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=["reptile4", "fomaml4", "metanas", "sgemm", "convops"])
    p.add_argument("--channels", type=int, default=64, help="convops: channels")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=3, help="timed meta-iterations")
    p.add_argument("--warmup", type=int, default=1, help="untimed meta-iterations first")
    p.add_argument("--meta-batch", type=int, default=0, help="override the workload's meta-batch")
    a = p.parse_args()
    times, gflop = [], 0.0
    if a.workload == "convops":
        torch.set_num_threads(a.threads)
        print(json.dumps(convops(a.channels, a.iters)))
        return
    if a.workload == "sgemm":
        n = 1024
        x = np.random.rand(n, n).astype(np.float32)
        y = np.random.rand(n, n).astype(np.float32)
        x @ y
        for _ in range(a.iters):
            t0 = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - t0)
        gflop = 2 * n ** 3 / 1e9
    else:
        if torch is None:
            sys.exit("torch is not importable from %s: install python3-torch and use /usr/bin/python3" % sys.executable)
        torch.set_num_threads(a.threads)
        torch.manual_seed(0)
        if a.workload in ("reptile4", "fomaml4"):
            model = ConvNet4(20)
            meta = [p.detach().clone() for p in model.parameters()]
            fwd = count_forward_flops(model, torch.randn(20, 1, 28, 28))
            if a.workload == "reptile4":
                mb = a.meta_batch or 5
                step = lambda: reptile4_iteration(model, meta, meta_batch=mb)  # noqa: E731
                gflop = (mb * 10 * 3 * fwd + mb * fwd) / 1e9
            else:
                mb = a.meta_batch or 16
                meta_p = [nn.Parameter(m) for m in meta]
                meta_opt = torch.optim.Adam(meta_p, lr=1e-3)
                step = lambda: fomaml4_iteration(model, meta_p, meta_opt, meta_batch=mb)  # noqa: E731
                gflop = mb * 6 * 3 * fwd / 1e9
        else:
            mb = a.meta_batch or 10
            model = SearchNet()
            meta_w = [p.detach().clone() for p in model.weights()]
            meta_a = [p.detach().clone() for p in model.arch()]
            # Adam state carried from task to task, as MetaNAS's task optimizer.
            w_opt = torch.optim.Adam(model.weights(), lr=5e-3, betas=(0.0, 0.999))
            a_opt = torch.optim.Adam(model.arch(), lr=5e-3, betas=(0.0, 0.999))
            fwd = count_forward_flops(model, torch.randn(20, 1, 28, 28))
            step = lambda: metanas_iteration(model, meta_w, meta_a, w_opt, a_opt, meta_batch=mb)  # noqa: E731
            gflop = (mb * 5 * 2 * 3 * fwd + mb * fwd) / 1e9
        model.train()
        for it in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            step()
            t = time.perf_counter() - t0
            if it >= a.warmup:
                times.append(t)
    print(json.dumps({"workload": a.workload, "threads": a.threads, "times_s": times,
                      "median_s": statistics.median(times), "gflop": gflop}))


if __name__ == "__main__":
    main()
