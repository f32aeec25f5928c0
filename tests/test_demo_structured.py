"""The structured pruning demo in quick mode: the rows exist, removal shrinks the ResNet and keeps its outputs."""

from torch_backend.nn import demo, demo_structured


def test_quick_structured_demo_rows(tmp_path):
    printed = []
    data = demo.load_data(None, 1)
    rows = demo_structured.run(data, quick=True, seed=1, out=str(tmp_path), echo=printed.append)
    names = [r.model for r in rows]
    assert names == ["dense"] + [f"slimming {p}%, {s}" for p in (30, 60) for s in ("masked", "removed", "fine-tuned")]
    dense = rows[0]
    for i in (1, 4):
        masked, removed, tuned = rows[i : i + 3]
        assert masked.parameters == dense.parameters and masked.macs == dense.macs  # masks alone save nothing
        assert masked.detail == "replay 20/20 match"
        assert removed.parameters < masked.parameters and removed.macs < masked.macs
        assert removed.accuracy == masked.accuracy  # outputs within 1e-5: the same argmax on every test image
        assert tuned.parameters == removed.parameters and "exported" in tuned.detail
        assert all(r.milliseconds > 0 for r in (masked, removed, tuned))
    assert rows[5].parameters < rows[2].parameters  # the higher ratio removes more
    assert sorted(p.name for p in tmp_path.iterdir()) == ["structured_30.safetensors", "structured_60.safetensors"]
    text = printed[0]
    assert "slimming 30%: parameters x" in text and "CPU time x" in text
