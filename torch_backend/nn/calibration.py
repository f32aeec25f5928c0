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
"""

from __future__ import annotations

import torch
from torch import nn

from reference.common import validate
from torch_backend.nn.backend import TORCH
from torch_backend.nn.compressor import Compressor, _compress
from torch_backend.nn.policies import chain_input

__all__ = ["calibrate"]


def calibrate(model: nn.Module, recipe, data, *, sequential: bool = True, verify_masks: bool = True,
              record_activations: bool = True, progress: bool = True) -> Compressor:  # fmt: skip
    """Validate and register `recipe` on `model`, then run its post-training rules on the calibration `data`.

    **Arguments:**

    - `model`: the `nn.Module` (its weights are the starting point; they are not changed, the compressed weights
      live in the parametrizations until `finalize`).
    - `recipe`: as for `compress`; rules with `gptq` or `sparsegpt` are calibrated here.
    - `data`: a re-iterable collection (a list, a `DataLoader`) of model inputs: a tensor, or a tuple of
      positional arguments, per batch. Sequential calibration reads it once per step.
    - `sequential`: compress layer by layer on the outputs of the compressed earlier layers (default), or all
      layers from the uncompressed model's inputs.
    - `progress`: a progress bar per layer.

    **Returns:**

    The `Compressor`.

    !!! note
        The model runs in eval mode and without gradients during calibration, and returns to its mode after.
        `RecipeError` for a bad recipe (nothing is changed); `ValueError` for data that is empty, an iterator
        (it could be read once only), or never reaches a layer the recipe names.
    """
    sequential = validate.boolean("sequential", sequential)
    progress = validate.boolean("progress", progress)
    if iter(data) is data:
        raise ValueError("data must be re-iterable (a list or a DataLoader), not an iterator: it is read once per step")
    if not any(True for _ in data):
        raise ValueError("data has no batches to calibrate on")
    compressor = _compress(model, recipe, verify_masks, record_activations, post_training=True)
    layers = [(t, c) for p in compressor.policies if getattr(p, "post_training", False)
              for t, c in zip(p.targets, p.compressions(), strict=True)]  # fmt: skip
    bar = _bar(len(layers), progress)
    was_training = model.training
    model.eval()
    try:
        remaining = list(layers)
        while remaining:
            rows, firsts = _collect(model, remaining, data)
            missing = [t.name for t, _ in remaining if not rows[id(t)]]
            if missing:
                raise ValueError(f"the calibration data never reached module(s) {missing}: nothing to calibrate on")
            if sequential:
                lead = min(remaining, key=lambda tc: firsts[id(tc[0])][0])
                group = [tc for tc in remaining if firsts[id(tc[0])][1] is firsts[id(lead[0])][1]]
            else:
                group = list(remaining)
            for t, c in group:
                if bar is not None:
                    bar.set_postfix_str(t.name)
                x = torch.cat(rows[id(t)])
                with torch.no_grad():
                    c.calibrate(chain_input(t, c), TORCH.gptq_hessian(x))
                if bar is not None:
                    bar.update(1)
            remaining = [tc for tc in remaining if tc not in group]
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


def _bar(total, progress):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="calibrating", unit="layer", disable=None)
