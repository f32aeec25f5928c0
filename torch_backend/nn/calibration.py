"""Post-training compression: calibrate a model layer by layer on data, without a training loop.

```python
compressor = calibrate(model, {"rules": [{"modules": "*", "types": ["Linear"], "algorithm": "gptq",
                                          "bits": 4, "group_size": 128}]}, batches)
report = compressor.replay()   # every GPTQ result recomputed by the NumPy reference from the stored Hessian
```

Forward hooks collect the inputs of the layers the recipe names; a layer's calibration Hessian is
`gptq_hessian` of all its input rows (every row of every batch, as float32), exact: it does not depend on the
batch size, the batch order or the device. Then the layer is compressed (`gptq`, `sparsegpt`).

**Sequential** (default): the layers are compressed in the order the forward reaches them, and each is
calibrated on the inputs it receives from the already-compressed earlier layers (one pass over the data per
step; layers fed the very same input tensor, such as an attention block's q, k and v projections, are done in
one step). **Non-sequential**: one pass over the data collects every layer's inputs from the uncompressed
model, then all are compressed.

Other rules of the recipe (training algorithms) are registered as `compress` does, before calibration.

**Data-parallel** (`data_parallel=True`, inside a `torch.distributed` process group): every rank holds the whole
model and passes its own share of the data (any number of rows per rank). Each layer's Hessian is the exact
Hessian of all ranks' rows (`torch_backend.distributed.gptq_hessian`: exact states added across the ranks), so
every rank computes the same result, bit for bit the result of one process calibrating on all the rows.
"""

from __future__ import annotations

import torch
from torch import nn

from reference.common import validate
from torch_backend import distributed
from torch_backend.distributed import comm
from torch_backend.nn.backend import TORCH
from torch_backend.nn.compressor import Compressor, apply_recipe
from torch_backend.nn.policies import chain_input

__all__ = ["calibrate"]


def calibrate(model: nn.Module, recipe, data, *, sequential: bool = True, verify_masks: bool = True,
              record_activations: bool = True, progress: bool = True, data_parallel: bool = False,
              group=None) -> Compressor:  # fmt: skip
    """Validate and register `recipe` on `model`, then run its post-training rules on the calibration `data`.

    **Arguments:**

    - `model`: the `nn.Module` (its weights are the starting point; they are not changed, the compressed weights
      live in the parametrizations until `finalize`).
    - `recipe`: as for `compress`; rules with `gptq` or `sparsegpt` are calibrated here, and those of
      `torch_backend.nn.posttraining` (`awq`, `smoothquant`, `rotation`, `adaround`, `hqq`), which read the rows.
    - `data`: a re-iterable collection (a list, a `DataLoader`) of model inputs: a tensor, or a tuple of
      positional arguments, per batch. Sequential calibration reads it once per step.
    - `sequential`: compress layer by layer on the outputs of the compressed earlier layers (default), or all
      layers from the uncompressed model's inputs.
    - `progress`: a progress bar per layer.
    - `data_parallel`: every rank of `group` (default: the world) calls `calibrate` with the same model and
      recipe and its own part of the data (at least one batch per rank; a batch may have no rows); the
      Hessians are those of all ranks' rows together.

    **Returns:**

    The `Compressor`.

    !!! note
        The model runs in eval mode and without gradients during calibration, and returns to its mode after.
        `RecipeError` for a bad recipe (nothing is changed); `ValueError` for data that is empty, an iterator
        (it could be read once only), or never reaches a layer the recipe names.
    """
    sequential = validate.boolean("sequential", sequential)
    progress = validate.boolean("progress", progress)
    data_parallel = validate.boolean("data_parallel", data_parallel)
    if iter(data) is data:
        raise ValueError("data must be re-iterable (a list or a DataLoader), not an iterator: it is read once per step")
    if data_parallel:
        empty = torch.tensor([0 if any(True for _ in data) else 1], dtype=torch.int64, device=comm.device(group))
        if int(comm.all_reduce(empty, "sum", group)):
            raise ValueError(
                f"data has no batches to calibrate on, on {int(empty)} rank(s): data-parallel calibration needs at "
                f"least one batch on every rank (a batch may have no rows)"
            )
    elif not any(True for _ in data):
        raise ValueError("data has no batches to calibrate on")
    compressor = apply_recipe(model, recipe, verify_masks, record_activations, post_training=True)
    layers = [(t, c) for p in compressor.policies if getattr(p, "post_training", False)
              for t, c in zip(p.targets, p.compressions(), strict=True)]  # fmt: skip
    if data_parallel and any(hasattr(c, "calibrate_rows") for _, c in layers):
        raise ValueError("data-parallel calibration is implemented for gptq and sparsegpt rules only")
    bar = _bar(len(layers), progress)
    was_training = model.training
    model.eval()
    try:
        remaining = list(layers)
        while remaining:
            rows, firsts = _collect(model, remaining, data)
            counts = [sum(r.shape[0] for r in rows[id(t)]) if rows[id(t)] else -1 for t, _ in remaining]
            if data_parallel:  # a layer is missing when no rank's data reached it
                reached = torch.tensor([int(c >= 0) for c in counts], dtype=torch.int64, device=comm.device(group))
                reached = comm.all_reduce(reached, "sum", group).tolist()
                partly = [
                    t.name for (t, _), r in zip(remaining, reached, strict=True) if 0 < r < comm.world_size(group)
                ]
                if partly:
                    raise ValueError(
                        f"the calibration data reached module(s) {partly} on some ranks only: data-parallel "
                        f"calibration needs the same layers reached on every rank"
                    )
                counts = [0 if r else -1 for r in reached]
            missing = [t.name for (t, _), c in zip(remaining, counts, strict=True) if c < 0]
            if missing:
                raise ValueError(f"the calibration data never reached module(s) {missing}: nothing to calibrate on")
            if sequential:
                lead = min(remaining, key=lambda tc: firsts[id(tc[0])][0])
                step = [tc for tc in remaining if firsts[id(tc[0])][1] is firsts[id(lead[0])][1]]
            else:
                step = list(remaining)
            for t, c in step:
                if bar is not None:
                    bar.set_postfix_str(t.name)
                with torch.no_grad():
                    if hasattr(c, "calibrate_rows"):  # AWQ, SmoothQuant, rotation, AdaRound, HQQ read the rows
                        c.calibrate_rows(chain_input(t, c), torch.cat(rows[id(t)]))
                        if bar is not None:
                            bar.update(1)
                        continue
                    if data_parallel:
                        x = _rows_of(rows[id(t)], t)
                        h = distributed.gptq_hessian(x, group=group)
                    else:
                        h = TORCH.gptq_hessian(torch.cat(rows[id(t)]))
                    c.calibrate(chain_input(t, c), h)
                if bar is not None:
                    bar.update(1)
            remaining = [tc for tc in remaining if tc not in step]
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return compressor


def _collect(model, layers, data):
    """Run every batch through the model; return each layer's input rows (float32, `(tokens, in_features)`)
    and, per layer, `(index of its first call, its first input tensor)`."""
    rows = {id(t): [] for t, _ in layers}
    firsts: dict = {}
    calls = [0]

    def hook(t):
        def record(module, args):
            x = args[0]
            if id(t) not in firsts:
                firsts[id(t)] = (calls[0], x)
            calls[0] += 1
            rows[id(t)].append(x.detach().reshape(-1, x.shape[-1]).float())

        return record

    handles = [t.module.register_forward_pre_hook(hook(t)) for t, _ in layers]
    try:
        with torch.no_grad():
            for batch in data:
                model(*batch) if isinstance(batch, tuple | list) else model(batch)
    finally:
        for h in handles:
            h.remove()
    return rows, firsts


def _rows_of(rows, target):
    """This rank's input rows of a layer, `(n, in_features)` float32 (no rows when its data never reached it)."""
    if rows:
        return torch.cat(rows)
    return torch.zeros((0, target.param.shape[1]), dtype=torch.float32, device=target.param.device)


def _bar(total, progress):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="calibrating", unit="layer", disable=None)
