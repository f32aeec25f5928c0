"""`pqref demo`: compress a small CNN on real handwritten digits and show what each recipe costs and saves.

The data are scikit-learn's 8x8 digits (1797 images, shipped with the package: no download). A dense baseline
is trained first; every recipe then starts from the baseline's weights and fine-tunes with compression on. For each
model the table shows test accuracy, sparsity, bits per weight, the size of the exported safetensors file, the
compression ratio against the dense float32 export, and whether the NumPy reference replays every compressed
tensor bit for bit. A PNG plots accuracy against exported size.
"""

from __future__ import annotations

import copy
import importlib
import json
import numbers
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from torch_backend.nn.compressor import compress
from torch_backend.nn.export import export_safetensors, load_safetensors
from torch_backend.nn.surgery import remove_channels

LAYERS = {"modules": "*", "types": ["Conv2d", "Linear"]}
GRADUAL_90 = {**LAYERS, "algorithm": "magnitude", "sparsity": 0.9, "schedule": {"start": 0, "end": "@70%", "every": 5}}
ACTIVATIONS_8 = {"modules": "*", "types": ["ReLU"], "algorithm": "activation_affine", "bits": 8}
RECIPES: dict[str, list[dict]] = {
    "dense": [],
    "gradual magnitude 90%": [GRADUAL_90],
    "2:4 sparsity": [{**LAYERS, "modules": "[!0]*", "algorithm": "nm", "n": 2, "m": 4}],  # conv 0 has 9 inputs
    "network slimming": [
        {"modules": "*", "types": ["BatchNorm2d"], "algorithm": "slimming", "ratio": 0.5, "lam": 1e-3, "at": "@60%"}
    ],
    "int8 QAT (W8A8)": [{**LAYERS, "algorithm": "affine", "bits": 8}, ACTIVATIONS_8],
    "4-bit LSQ": [{**LAYERS, "algorithm": "lsq", "bits": 4}],
    "ternary TWN": [{**LAYERS, "algorithm": "twn"}],
    "binary XNOR": [{**LAYERS, "algorithm": "xnor"}],
    "90% magnitude + int8": [GRADUAL_90, {**LAYERS, "algorithm": "affine", "bits": 8}],
}
# Recipes whose pruned channels are physically removed after training (Conv-BN-Conv chains, `surgery`).
REMOVE_CHANNELS = {"network slimming"}


class DemoError(ValueError):
    """A bad argument or dataset for `run`, found before anything is trained or written; one line naming the
    argument (or the dataset item) and the value. `pqref demo` prints it and exits with status 2."""


@dataclass
class Result:
    recipe: str
    accuracy: float
    sparsity: float
    bits_per_weight: float
    exported_bytes: int
    compression: float
    replay: str
    seconds: float


def load_data(dataset: str | None, seed: int):
    """`(x_train, y_train, x_test, y_test)` as float32 NCHW tensors and int64 labels; 80/20 split by `seed`.

    `dataset` is `None` for scikit-learn's digits, or `"module:attribute"` naming a torchvision-style dataset
    (or a callable returning one; the module is also looked for in the current folder): an iterable of
    `(image, label)` pairs. Images are arrays or tensors of real numbers, all of one square shape `H x W` or
    `C x H x W` (`H >= 2`), finite in float32; they are scaled by their largest pixel when that exceeds 1. Labels
    are ints `>= 0` (Python or NumPy ints, or 0-d integer tensors); the classes are `0 .. max(label)`.

    !!! note
        Anything else raises `DemoError` naming the item: a float label (never truncated), a negative one, NaN
        or infinite pixels, images of different shapes; so do a `dataset` that is not `module:attribute`, a
        module that cannot be imported, a missing attribute, and fewer than 2 items.
    """
    if dataset is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)
        y = torch.from_numpy(digits.target.astype(np.int64))
    else:
        images, labels = _read_dataset(dataset)
        x = torch.from_numpy(np.stack(images))
        x = x.unsqueeze(1) if x.ndim == 3 else x
        x = x / x.amax().clamp(min=1.0)
        y = torch.tensor(labels, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    x, y = x[order], y[order]
    cut = int(0.8 * len(y))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def recipe_names() -> list[str]:
    """Every demo recipe: the CNN's (`RECIPES`), then the language model's (`demo_lm.RECIPES`)."""
    from torch_backend.nn import demo_lm

    return [*RECIPES, *demo_lm.RECIPES]


def select_recipes(names) -> list[str]:
    """The recipes `names` asks for, in its order (every one of `recipe_names()` for `None`): each an exact name or the unique
    case-insensitive prefix of one (`"int8 QAT"` is `"int8 QAT (W8A8)"`); `DemoError` for an unknown or
    ambiguous name, or a recipe asked for twice."""
    every = recipe_names()
    if names is None:
        return every
    chosen: list[str] = []
    for given in names:
        matches = [given] if given in every else [r for r in every if given and r.lower().startswith(given.lower())]
        if not matches:
            raise DemoError(f"unknown demo recipe {given!r}; choose from {', '.join(map(repr, every))}")
        if len(matches) > 1:
            raise DemoError(f"demo recipe {given!r} is ambiguous: it begins {', '.join(map(repr, matches))}")
        if matches[0] in chosen:
            raise DemoError(f"demo recipe {matches[0]!r} is asked for twice")
        chosen.append(matches[0])
    return chosen


def check_device(device: str | None) -> str:
    """`cpu`, `cuda` or `cuda:N` as given (`DemoError` if CUDA, or device N, is not there); `None`: `cuda` when
    present, else `cpu`."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    index = device.removeprefix("cuda:") if device.startswith("cuda:") else "0" if device == "cuda" else None
    if index is None or not index.isdigit():
        raise DemoError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DemoError(f"--device {device}: CUDA is not available here (torch {torch.__version__}, {built})")
    if int(index) >= torch.cuda.device_count():
        raise DemoError(f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)")
    return device


def check_out(out) -> Path:
    """`out` as a `Path`, if it is a folder or can be made one; `DemoError` for a file or an unwritable place."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise DemoError(f"--out {str(out)!r} is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise DemoError(f"--out {str(out)!r} is not writable")
        return path
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        why = "is not a folder" if not parent.is_dir() else "is not writable"
        raise DemoError(f"--out {str(out)!r} cannot be created: {parent} {why}")
    return path


def _read_dataset(dataset: str):
    """The images (float32 arrays of one shape) and labels (ints) of `"module:attribute"`, every item checked."""
    where = f"--dataset {dataset!r}"
    module, _, attr = dataset.partition(":")
    if not module or not attr or not all(p.isidentifier() for p in module.split(".")) or not attr.isidentifier():
        raise DemoError(f"{where}: expected module:attribute, such as torchvision.datasets:MNIST")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module)
    except (Exception, SystemExit) as exc:
        raise DemoError(f"{where}: cannot import {module}: {type(exc).__name__}: {exc}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if not hasattr(mod, attr):
        raise DemoError(f"{where}: module {module} has no attribute {attr!r}")
    source = getattr(mod, attr)
    try:
        ds = source() if callable(source) else source
        items = iter(ds)
    except (Exception, SystemExit) as exc:
        what = f"calling {attr}()" if callable(source) else f"iterating over {attr}"
        raise DemoError(f"{where}: {what} failed: {type(exc).__name__}: {exc}") from None
    images, labels = [], []
    while True:
        k = len(images)
        try:
            item = next(items)
        except StopIteration:
            break
        except (Exception, SystemExit) as exc:
            raise DemoError(f"{where}: reading item {k} failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(item, tuple | list) or len(item) != 2:
            what = f"a {type(item).__name__} of {len(item)}" if isinstance(item, tuple | list) else type(item).__name__
            raise DemoError(f"{where}: item {k} is {what}, not an (image, label) pair")
        image, label = item
        images.append(_image(image, k, where, images[0].shape if images else None))
        labels.append(_label(label, k, where))
    if len(images) < 2:
        raise DemoError(f"{where}: {len(images)} item(s); the demo needs at least 2 (80% to train, 20% to test)")
    return images, labels


def _image(image, k, where, shape):
    try:
        a = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    except Exception as exc:
        raise DemoError(f"{where}: item {k}: the image is not an array ({type(exc).__name__}: {exc})") from None
    if a.dtype.kind not in "biuf":
        raise DemoError(f"{where}: item {k}: the image has dtype {a.dtype}, not real numbers")
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2] or a.shape[-1] < 2:
        raise DemoError(
            f"{where}: item {k}: the image has shape {a.shape}; the demo's CNN takes square images, H x W or "
            "C x H x W with H >= 2 (torchvision's ToTensor() gives C x H x W)"
        )
    if shape is not None and a.shape != shape:
        raise DemoError(f"{where}: item {k}: the image has shape {a.shape}, item 0 has {shape}")
    with np.errstate(over="ignore"):  # reported just below
        x = a.astype(np.float32)
    if not np.isfinite(x).all():
        raise DemoError(f"{where}: item {k}: the image has NaN or infinite pixels (in float32)")
    return x


def _label(label, k, where) -> int:
    value = label
    if isinstance(label, torch.Tensor | np.ndarray) and label.ndim == 0:
        value = label.item()
        if isinstance(label, torch.Tensor) and (label.is_floating_point() or label.dtype == torch.bool):
            value = float(value)
        elif isinstance(label, np.ndarray) and label.dtype.kind not in "iu":
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        shown = " ".join(repr(label).split())[:40]
        raise DemoError(f"{where}: item {k}: the label is {type(label).__name__} {shown}; labels are ints >= 0")
    if value < 0:
        raise DemoError(f"{where}: item {k}: the label is {int(value)}; labels are ints >= 0")
    return int(value)


def build_model(in_channels: int, classes: int, size: int) -> nn.Sequential:
    """conv-bn-relu, conv-bn-relu, max-pool, linear-relu, linear: a Conv-BN-Conv chain for channel removal."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (size // 2) ** 2, 64),
        nn.ReLU(),
        nn.Linear(64, classes),
    )


def _resolve(rules, steps):
    """Replace `"@70%"`-style step placeholders (in a rule or its schedule) by step numbers of this run."""

    def at(v):
        if isinstance(v, str) and v.startswith("@") and v.endswith("%"):
            return max(1, int(steps * float(v[1:-1]) / 100))
        return v

    out = []
    for rule in rules:
        rule = {k: at(v) for k, v in copy.deepcopy(rule).items()}
        if isinstance(rule.get("schedule"), dict):
            rule["schedule"] = {k: at(v) for k, v in rule["schedule"].items()}
        out.append(rule)
    return out


def train(model, data, rules, *, epochs, lr, batch, seed, device, bar=None):
    """Fine-tune `model` under `rules`; returns the compressor (or None for no rules)."""
    x_train, y_train = data[0].to(device), data[1].to(device)
    steps = epochs * ((len(y_train) + batch - 1) // batch)
    compressor = compress(model, {"rules": _resolve(rules, steps)}) if rules else None
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y_train), generator=gen).to(device)
        for i in range(0, len(y_train), batch):
            idx = order[i : i + batch]
            if compressor:
                compressor.step(step)
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            if compressor:
                compressor.before_optimizer_step()
            opt.step()
            step += 1
            if bar is not None:
                bar.update(1)
    model.eval()
    return compressor


@torch.no_grad()
def accuracy(model, x, y, device) -> float:
    model.eval()
    return float((model(x.to(device)).argmax(1).cpu() == y).float().mean())


def run(*, quick=False, seed=0, device=None, out="pqref-demo", dataset=None, recipes=None, echo=print) -> list[Result]:
    """Every part of the demo the recipes select: the CNN on digits (`RECIPES`), the language model on Python's
    documentation (`demo_lm.RECIPES`, on the CPU). Arguments are checked before anything is trained or written."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise DemoError(f"--seed must be an int in [0, 2**32), got {seed!r}")
    names = select_recipes(recipes or None)
    device = check_device(device)
    out_dir = check_out(out)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    from torch_backend.nn import demo_lm

    lm_names = [n for n in names if n in demo_lm.RECIPES]
    names = [n for n in names if n in RECIPES]
    data = load_data(dataset, seed) if names else None  # checked before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    if names:
        results = run_cnn(names, data, quick=quick, seed=seed, device=device, out_dir=out_dir)
        echo(table(results))
        if "network slimming" in names:  # the same method on a ResNet, channels removed across residual additions
            from torch_backend.nn import demo_structured

            demo_structured.run(data, quick=quick, seed=seed, device=device, out=out_dir, echo=echo)
        if quick:
            echo(
                "quick mode: 2 base epochs and 1 fine-tuning epoch, a smoke run; the 90% sparsity recipes need the "
                "full run's fine-tuning to recover their accuracy (run `pqref demo` without --quick)"
            )
    if lm_names:
        lm_results = demo_lm.run(quick=quick, seed=seed, out_dir=out_dir, recipes=lm_names, echo=echo)
        echo(demo_lm.table(lm_results))
        results = [*results, *lm_results]
    rows = [{"part": "language model" if isinstance(r, demo_lm.LMResult) else "cnn", **asdict(r)} for r in results]
    (out_dir / "results.json").write_text(json.dumps(rows, indent=2))
    written = [out_dir / "results.json"]
    if names:
        plot([r for r in results if isinstance(r, Result)], out_dir / "accuracy_vs_size.png")
        written.append(out_dir / "accuracy_vs_size.png")
    echo(f"wrote {' and '.join(str(w) for w in written)}")
    return results


def run_cnn(names, data, *, quick, seed, device, out_dir) -> list[Result]:
    """Train the small CNN on `data`, fine-tune a copy with each recipe of `names`, and return the table rows."""
    from tqdm import tqdm

    in_ch, size = data[0].shape[1], data[0].shape[-1]
    classes = int(data[1].max()) + 1
    epochs_base, epochs_fine = (2, 1) if quick else (12, 6)
    steps_per_epoch = (len(data[1]) + 63) // 64
    total = steps_per_epoch * (epochs_base + epochs_fine * (len(names) - ("dense" in names)))
    results = []
    with tqdm(total=total, desc="training", unit="step", disable=None) as bar:
        t0 = time.perf_counter()
        base = build_model(in_ch, classes, size).to(device)
        train(base, data, [], epochs=epochs_base, lr=1e-2, batch=64, seed=seed, device=device, bar=bar)
        base_seconds = time.perf_counter() - t0
        dense_bytes = export_safetensors(base, None, out_dir / "dense.safetensors")
        for name in names:
            t0 = time.perf_counter()
            model = copy.deepcopy(base)
            compressor = None
            if name != "dense":
                compressor = train(model, data, RECIPES[name], epochs=epochs_fine, lr=2e-3, batch=64, seed=seed + 1,
                                   device=device, bar=bar)  # fmt: skip
            rows = compressor.replay() if compressor else []
            summary = compressor.summary() if compressor else {"sparsity": 0.0, "bits_per_weight": 32.0}
            if name in REMOVE_CHANNELS:
                small = remove_channels(compressor.finalize())
                dense_params = sum(p.numel() for p in base.parameters())
                summary["sparsity"] = 1.0 - sum(p.numel() for p in small.parameters()) / dense_params
                model, compressor = small, None
            acc = accuracy(model, data[2], data[3], device)
            path = out_dir / f"{_slug(name)}.safetensors"
            size_bytes = export_safetensors(model, compressor, path)
            loaded_ok = _check_export(model, path)
            if rows:
                ok = all(r.match for r in rows) and loaded_ok
                replay = f"{sum(r.match for r in rows)}/{len(rows)} match" + ("" if loaded_ok else ", export differs")
                if name in REMOVE_CHANNELS:
                    replay += ", channels removed"
            else:
                ok, replay = loaded_ok, "dense" if loaded_ok else "export differs"
            seconds = time.perf_counter() - t0 + (base_seconds if name == "dense" else 0.0)
            results.append(Result(name, acc, summary["sparsity"], summary["bits_per_weight"], size_bytes,
                                  dense_bytes / size_bytes, replay if ok else "MISMATCH: " + replay,
                                  seconds))  # fmt: skip
    return results


def _check_export(model, path) -> bool:
    """The loader (NumPy reference only) reconstructs every weight the model uses, bit for bit."""
    loaded = load_safetensors(path)
    for name, tensor in _effective_state(model).items():
        want = tensor.detach().cpu().numpy()
        got = loaded.get(name)
        if got is None or got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
            return False
    return True


def _effective_state(model):
    """Parameter and buffer names as a plain model has them, with the values the forward uses."""
    from torch_backend.nn.export import effective_tensors

    return dict(effective_tensors(model))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def table(results) -> str:
    head = f"{'recipe':<24} {'accuracy':>8} {'sparsity':>8} {'bits/w':>7} {'bytes':>8} {'ratio':>6}  replay"
    lines = [head, "-" * (len(head) + 12)]
    for r in results:
        lines.append(
            f"{r.recipe:<24} {r.accuracy:>8.2%} {r.sparsity:>8.1%} {r.bits_per_weight:>7.2f} {r.exported_bytes:>8} "
            f"{r.compression:>5.1f}x  {r.replay}"
        )
    return "\n".join(lines)


def plot(results, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        ax.scatter(r.exported_bytes / 1024, 100 * r.accuracy, s=40)
        ax.annotate(r.recipe, (r.exported_bytes / 1024, 100 * r.accuracy), textcoords="offset points", xytext=(5, 3),
                    fontsize=8)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("exported size (KiB, safetensors, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("pqref demo: accuracy against model size (digits, small CNN)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
