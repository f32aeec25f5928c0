"""Structured pruning demo: network slimming on a small ResNet, with the pruned channels physically removed.

The ResNet (a stem, one block with an identity shortcut, one with a convolution + batch-norm shortcut, global
pooling, a linear classifier) is trained on scikit-learn's 8x8 digits. For each pruning ratio, a copy is trained
with network slimming's L1 penalty on every batch-norm scale (`slimming` with `input_shape`: the channels that a
residual addition joins are pruned together), pruned by one global threshold at the end of that phase, finalized,
shrunk with `surgery.remove_pruned_channels`, fine-tuned as an ordinary model and exported. Each row shows the
parameters, the multiply-accumulates of one image, the test accuracy and the measured CPU time of one forward over
the test set (the fastest of repeated runs), for the masked model (before removal) and the smaller one (after).

`pqref demo` runs it with the network slimming recipe (`pqref demo --recipe "network slimming"`), on the same data
as the CNN part.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from torch_backend.nn.compressor import compress
from torch_backend.nn.export import export_safetensors
from torch_backend.nn.surgery import remove_pruned_channels

RATIOS = (0.3, 0.6)
LAM = 1e-2  # the L1 strength on the batch-norm scales
TUNE_LR = 3e-3  # Adam's learning rate when fine-tuning the smaller model


class Block(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (identity, or a 1x1 conv and a batch norm when the shape changes)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet for small images: stem, two blocks (the second halves the resolution), a linear head."""

    def __init__(self, in_channels: int = 1, classes: int = 10, width: int = 32):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.layer1 = Block(width, width)
        self.layer2 = Block(width, 2 * width, 2)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(F.relu(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@dataclass
class Row:
    model: str
    parameters: int
    macs: int
    accuracy: float
    milliseconds: float
    detail: str = ""


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def macs(model, x) -> int:
    """Multiply-accumulates of one forward of `x[:1]`: convolutions and linear layers (a zero weight still costs)."""
    total = 0

    def count(m, inputs, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += out.numel() * m.in_features

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with torch.no_grad():
            model.eval()(x[:1])
    finally:
        for h in handles:
            h.remove()
    return total


def cpu_milliseconds(models, x, repeats: int) -> list[float]:
    """For each model, the fastest of `repeats` timed forwards over `x` on the CPU with one thread, after two
    warm-up rounds. The models take turns (round-robin), so that a busy machine slows them alike; the minimum, not
    the median, since other processes only ever add time."""
    models = [copy.deepcopy(m).cpu().eval() for m in models]
    x = x.cpu()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = [[] for _ in models]
    try:
        with torch.no_grad():
            for i in range(repeats + 2):
                for m, t in zip(models, times, strict=True):
                    t0 = time.perf_counter()
                    m(x)
                    if i >= 2:
                        t.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return [1000 * min(t) for t in times]


def fit(model, data, *, epochs, lr, seed, device, rules=None, after=None):
    """Train `model` (under `rules`, if any) with Adam; `after(step)` runs before each optimizer step is taken."""
    x, y = data[0].to(device), data[1].to(device)
    batch = 64
    steps = epochs * ((len(y) + batch - 1) // batch)
    compressor = compress(model, {"rules": rules(steps)}) if rules else None
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=gen).to(device)
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            if compressor:
                compressor.step(step)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if compressor:
                compressor.before_optimizer_step()
            opt.step()
            step += 1
    if compressor:
        compressor.step(step)  # the pruning step, if it falls at the end of the phase
    model.eval()
    return compressor


@torch.no_grad()
def accuracy(model, x, y, device) -> float:
    model.eval()
    return float((model(x.to(device)).argmax(1).cpu() == y).float().mean())


def run(data, *, quick=False, seed=0, device="cpu", out=None, ratios=RATIOS, lam=LAM, echo=print) -> list[Row]:
    """Train the ResNet, slim it at each ratio, remove the channels, fine-tune; returns the table's rows.

    `data` is `(x_train, y_train, x_test, y_test)` as `demo.load_data` gives it; `out` a folder for the exported
    smaller models (None: nothing is written).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny layers; on a busy 2-core machine the full run took 25 s with 1 thread, 125 s with 2
    try:
        return _run(quick, seed, device, data, out, ratios, lam, echo)
    finally:
        torch.set_num_threads(threads)


def _run(quick, seed, device, data, out, ratios, lam, echo):
    torch.manual_seed(seed)
    in_ch, size = data[0].shape[1], data[0].shape[-1]
    classes = int(data[1].max()) + 1
    epochs_base, epochs_l1, epochs_tune, repeats = (1, 1, 1, 3) if quick else (6, 5, 3, 15)
    x_test, y_test = data[2], data[3]
    shape = [1, in_ch, size, size]
    t0 = time.perf_counter()
    base = ResNet(in_ch, classes, width=16 if quick else 32).to(device)
    fit(base, data, epochs=epochs_base, lr=1e-2, seed=seed, device=device)
    rows = [Row("dense", parameters(base), macs(base, x_test.to(device)), accuracy(base, x_test, y_test, device), 0.0)]
    timed = [base]
    for ratio in ratios:
        model = copy.deepcopy(base)

        def rules(steps, ratio=ratio):
            return [{"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": ratio, "lam": lam,
                     "at": steps, "input_shape": shape}]  # fmt: skip

        compressor = fit(model, data, epochs=epochs_l1, lr=2e-3, seed=seed + 1, device=device, rules=rules)
        replay = compressor.replay()
        matched = sum(r.match for r in replay)
        masked = compressor.finalize()
        name = f"slimming {ratio:.0%}"
        rows.append(Row(f"{name}, masked", parameters(masked), macs(masked, x_test.to(device)),
                        accuracy(masked, x_test, y_test, device), 0.0, f"replay {matched}/{len(replay)} match"))  # fmt: skip
        small = remove_pruned_channels(masked, x_test[:64].to(device))
        rows.append(Row(f"{name}, removed", parameters(small), macs(small, x_test.to(device)),
                        accuracy(small, x_test, y_test, device), 0.0, "outputs within 1e-5 of the masked model's"))  # fmt: skip
        timed += [masked, copy.deepcopy(small)]
        fit(small, data, epochs=epochs_tune, lr=TUNE_LR, seed=seed + 2, device=device)
        detail = "fine-tuned after removal"
        if out is not None:
            nbytes = export_safetensors(small, None, f"{out}/structured_{round(100 * ratio)}.safetensors")
            detail += f", exported {nbytes} bytes"
        rows.append(Row(f"{name}, fine-tuned", parameters(small), macs(small, x_test.to(device)),
                        accuracy(small, x_test, y_test, device), 0.0, detail))  # fmt: skip
        timed.append(small)
    for row, ms in zip(rows, cpu_milliseconds(timed, x_test, repeats), strict=True):
        row.milliseconds = ms
    echo(table(rows, len(x_test), time.perf_counter() - t0))
    return rows


def table(rows, images: int, seconds: float) -> str:
    head = f"{'structured pruning (ResNet)':<28} {'params':>8} {'MACs':>9} {'accuracy':>8} {'CPU ms':>7}  notes"
    lines = [head, "-" * (len(head) + 30)]
    for r in rows:
        lines.append(
            f"{r.model:<28} {r.parameters:>8} {r.macs:>9} {r.accuracy:>8.2%} {r.milliseconds:>7.2f}  {r.detail}"
        )
    dense = rows[0]
    ratios = []
    for r in rows:
        if r.model.endswith("removed"):
            masked = next(m for m in rows if m.model == r.model.replace("removed", "masked"))
            ratios.append(
                f"{r.model.removesuffix(', removed')}: parameters x{r.parameters / dense.parameters:.2f}, MACs "
                f"x{r.macs / dense.macs:.2f}, CPU time x{r.milliseconds / masked.milliseconds:.2f} of the masked model"
            )
    lines.append(
        f"CPU ms: one forward over the {images} test images, 1 thread, the fastest of the runs (the models take "
        f"turns); {seconds:.1f} s in all"
    )
    return "\n".join(lines + ratios)
