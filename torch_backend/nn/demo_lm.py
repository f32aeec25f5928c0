"""The language-model part of `pqref demo`: a small causal transformer on real English text, compressed after
training with round-to-nearest, GPTQ and SparseGPT, every result replayed by the NumPy reference.

The text is the documentation topics that ship with every Python (`pydoc_data.topics`: about 465,000
characters of English prose and code), read character by character; the last 10% is the test split. The model is
a 2-block transformer with hand-written attention (its q, k, v and output projections are `nn.Linear` layers, as
in large models). After training, each recipe starts from the trained weights; the post-training recipes are
calibrated layer by layer (`torch_backend.nn.calibrate`, sequential) on 64 training sequences. The table shows
test bits per character, the exported size and the replay.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from torch_backend.nn.calibration import calibrate
from torch_backend.nn.compressor import compress
from torch_backend.nn.export import effective_tensors, export_safetensors, load_safetensors

CONTEXT = 64
LINEAR = {"modules": "*", "types": ["Linear"]}
RECIPES: dict[str, list[dict]] = {
    "float32": [],
    "RTN int4 g128": [{**LINEAR, "algorithm": "affine", "bits": 4, "symmetric": False, "axis": 1, "group_size": 128}],
    "GPTQ int4 g128": [{**LINEAR, "algorithm": "gptq", "bits": 4, "group_size": 128}],
    "GPTQ int4 g128 act-order": [{**LINEAR, "algorithm": "gptq", "bits": 4, "group_size": 128, "act_order": True}],
    "RTN int3 g128": [{**LINEAR, "algorithm": "affine", "bits": 3, "symmetric": False, "axis": 1, "group_size": 128}],
    "GPTQ int3 g128": [{**LINEAR, "algorithm": "gptq", "bits": 3, "group_size": 128}],
    "SparseGPT 50%": [{**LINEAR, "algorithm": "sparsegpt", "sparsity": 0.5}],
    "SparseGPT 2:4": [{**LINEAR, "algorithm": "sparsegpt", "n": 2, "m": 4}],
    "SparseGPT 50% + int4": [{**LINEAR, "algorithm": "sparsegpt", "sparsity": 0.5, "bits": 4, "group_size": 128}],
    "AWQ int4 g128": [{**LINEAR, "algorithm": "awq", "bits": 4, "group_size": 128}],
    "HQQ int4 g128": [{**LINEAR, "algorithm": "hqq", "bits": 4, "group_size": 128}],
    "AdaRound int4 g128": [{**LINEAR, "algorithm": "adaround", "bits": 4, "group_size": 128, "iterations": 50}],
    "Hadamard + RTN W4A8 g128": [{**LINEAR, "algorithm": "rotation", "bits": 4, "group_size": 128, "act_bits": 8}],
    "SmoothQuant W8A8": [{**LINEAR, "algorithm": "smoothquant", "alpha": 0.5}],
}
# the algorithms `calibrate` runs (the others are registered by `compress`)
POST_TRAINING = ("gptq", "sparsegpt", "awq", "smoothquant", "rotation", "adaround", "hqq")


@dataclass
class LMResult:
    recipe: str
    bits_per_char: float
    exported_bytes: int
    compression: float
    replay: str
    seconds: float


def load_text():
    """`(train, test, vocabulary)`: the character codes of `pydoc_data.topics` (sorted by topic), 90/10."""
    from pydoc_data.topics import topics

    text = "".join(topics[k] for k in sorted(topics))
    vocabulary = ["?"] + sorted({c for c in text if 32 <= ord(c) < 127 or c == "\n"})
    vocabulary += [""] * (-len(vocabulary) % 8)  # unused codes: the output layer's size a multiple of 8 (GPTQ packs 8)
    index = {c: i for i, c in enumerate(vocabulary)}
    codes = torch.tensor([index.get(c, 0) for c in text], dtype=torch.long)
    cut = int(0.9 * len(codes))
    return codes[:cut], codes[cut:], vocabulary


class Block(nn.Module):
    """Pre-norm transformer block: causal multi-head attention with q, k, v, o `nn.Linear`s, then an MLP."""

    def __init__(self, d, heads, hidden):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        b, n, d = x.shape
        y = self.norm1(x)
        q, k, v = (m(y).view(b, n, self.heads, d // self.heads).transpose(1, 2) for m in (self.q, self.k, self.v))
        a = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.norm2(x))))


class CharTransformer(nn.Module):
    def __init__(self, vocabulary, d=128, heads=4, blocks=2, hidden=256, context=CONTEXT):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, d)
        self.position = nn.Parameter(torch.zeros(context, d))
        self.blocks = nn.Sequential(*[Block(d, heads, hidden) for _ in range(blocks)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocabulary)

    def forward(self, idx):
        x = self.embed(idx) + self.position[: idx.shape[1]]
        return self.head(self.norm(self.blocks(x)))


def windows(codes, starts):
    x = torch.stack([codes[s : s + CONTEXT] for s in starts])
    y = torch.stack([codes[s + 1 : s + CONTEXT + 1] for s in starts])
    return x, y


def bits_per_char(model, codes, sequences=256) -> float:
    """Test bits per character on `sequences` evenly spaced windows of the split."""
    step = max(1, (len(codes) - CONTEXT - 1) // sequences)
    x, y = windows(codes, range(0, step * sequences, step))
    model.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x).reshape(-1, model.head.out_features), y.reshape(-1))
    return float(loss) / math.log(2)


def train_model(train, vocabulary, *, steps, seed, size, bar=None):
    torch.manual_seed(seed)
    model = CharTransformer(len(vocabulary), **size)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(train) - CONTEXT - 1, (16,), generator=gen).tolist()
        x, y = windows(train, starts)
        loss = nn.functional.cross_entropy(model(x).reshape(-1, len(vocabulary)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        if bar is not None:
            bar.update(1)
    return model.eval()


def calibration_batches(train, *, sequences, batch, seed):
    """`sequences` training windows (fixed by `seed`), in batches of `batch`."""
    gen = torch.Generator().manual_seed(seed + 7)
    starts = torch.randint(0, len(train) - CONTEXT - 1, (sequences,), generator=gen).tolist()
    x, _ = windows(train, starts)
    return [x[i : i + batch] for i in range(0, sequences, batch)]


def run(*, quick, seed, out_dir, recipes=None, echo=print) -> list[LMResult]:
    """Train the language model, compress it with each recipe, and return the table rows.

    One torch thread throughout: the layers are small (50 training steps took 1.8 s with one thread and 3.0 s with
    two on an idle 2-core machine), and the trained model, hence the table, does not depend on the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(quick=quick, seed=seed, out_dir=out_dir, recipes=recipes, echo=echo)
    finally:
        torch.set_num_threads(threads)


def _run(*, quick, seed, out_dir, recipes, echo) -> list[LMResult]:
    from tqdm import tqdm

    train, test, vocabulary = load_text()
    names = recipes or list(RECIPES)
    steps, sequences, size, group = (40, 16, QUICK_SIZE, 32) if quick else (1000, 64, {}, 128)
    recipes_used = {name: _with_groups(RECIPES[name], group) for name in names}
    with tqdm(total=steps, desc="language model", unit="step", disable=None) as bar:
        t0 = time.perf_counter()
        base = train_model(train, vocabulary, steps=steps, seed=seed, size=size, bar=bar)
        base_seconds = time.perf_counter() - t0
    dense_bytes = export_safetensors(base, None, out_dir / "lm_float32.safetensors")
    data = calibration_batches(train, sequences=sequences, batch=8, seed=seed)
    results = []
    for name in names:
        t0 = time.perf_counter()
        model = copy.deepcopy(base)
        rules = recipes_used[name]
        compressor = None
        if rules and any(r["algorithm"] in POST_TRAINING for r in rules):
            compressor = calibrate(model, {"rules": rules}, data, progress=False)
        elif rules:
            compressor = compress(model, {"rules": rules})
        rows = compressor.replay() if compressor else []
        bpc = bits_per_char(model, test)
        path = out_dir / f"lm_{_slug(name)}.safetensors"
        size = export_safetensors(model, compressor, path)
        exported = _same(model, path)
        ok = all(r.match for r in rows) and exported
        replay = (f"{sum(r.match for r in rows)}/{len(rows)} match" if rows else "dense") + (
            "" if exported else ", export differs"
        )
        seconds = time.perf_counter() - t0 + (base_seconds if not rules else 0.0)
        results.append(LMResult(name, bpc, size, dense_bytes / size, replay if ok else "MISMATCH: " + replay, seconds))
    if quick:
        echo(f"quick mode: a smaller model ({QUICK_SIZE}), {steps} training steps, groups of {group}: a smoke run")
    if "GPTQ int4 g128" in names:
        echo(_batch_size_check(base, train, sequences, seed, recipes_used["GPTQ int4 g128"]))
    return results


QUICK_SIZE = {"d": 32, "heads": 2, "blocks": 1, "hidden": 64}


def _with_groups(rules, group):
    """The rules with `group_size` 128 replaced by `group` (the quick model's layers have 32 or 64 inputs), and
    AdaRound's iterations cut to 20 in quick mode."""
    quick = group != 128
    return [{**r, **({"group_size": group} if r.get("group_size") == 128 else {}),
             **({"iterations": 20} if quick and r["algorithm"] == "adaround" else {})} for r in rules]  # fmt: skip


def _batch_size_check(base, train, sequences, seed, rules) -> str:
    """Calibrate GPTQ int4 with batches of 8 and of 32 sequences: the quantized weights are the same bits."""
    weights = []
    for batch in (8, 32):
        model = copy.deepcopy(base)
        data = calibration_batches(train, sequences=sequences, batch=min(batch, sequences), seed=seed)
        calibrate(model, {"rules": rules}, data, progress=False)
        weights.append({k: v.numpy().tobytes() for k, v in effective_tensors(model)})
    same = weights[0] == weights[1]
    return (f"GPTQ int4 g128 calibrated in batches of 8 and of {min(32, sequences)} sequences: quantized weights "
            f"{'bit-identical' if same else 'DIFFER'} ({len(weights[0])} tensors)")  # fmt: skip


def _same(model, path) -> bool:
    loaded = load_safetensors(path)
    return all(loaded[k].tobytes() == v.numpy().tobytes() for k, v in effective_tensors(model))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def table(results, dense_bpc=None) -> str:
    head = f"{'language model':<26} {'bits/char':>9} {'bytes':>9} {'ratio':>6}  replay"
    lines = [head, "-" * (len(head) + 12)]
    for r in results:
        lines.append(f"{r.recipe:<26} {r.bits_per_char:>9.4f} {r.exported_bytes:>9} {r.compression:>5.1f}x  {r.replay}")
    return "\n".join(lines)
