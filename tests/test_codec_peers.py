"""Checkpoint codecs against the peers that write those formats, where they install on CPU (gguf-py,
compressed-tensors): files a peer writes decode bit-exactly with pqref, files pqref writes the peer reads back
bit-exactly. pqref's own semantics are asserted first, against its definitions; a peer's differences are recorded
with its version (tests/peer_record.py), never required."""

from __future__ import annotations

import numpy as np
import pytest

import reference as R
from tests import peer_record

F32 = np.float32


def _rows(seed=0, n=8, width=512):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, width)) * rng.choice([1e-3, 1.0, 100.0], (n, 1))).astype(F32)
    x[0, :32] = 0
    x[0, 0] = -0.0  # an all-zero block that starts with -0.0: C's Q4_0 stores d = -0.0
    return x


def test_gguf_definitions_hold():
    """Q8_0 and Q4_0 against their formulas written out here; Q4_K decodes within its own scale grid."""
    x = _rows()
    b = R.gguf_quantize(x, "Q8_0").reshape(-1, 34)
    rows = x.reshape(-1, 32)
    d = (np.abs(rows).max(axis=1) / F32(127)).astype(F32)
    assert np.array_equal(b[:, :2].copy().view("<f2").reshape(-1), d.astype(np.float16))
    inv = np.where(d > 0, F32(1) / np.where(d > 0, d, F32(1)), F32(0)).astype(F32)
    v = (rows * inv[:, None]).astype(np.float64)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)  # ties away; exact in float64 for these magnitudes
    assert np.array_equal(b[:, 2:].view(np.int8), q.astype(np.int8))
    b4 = R.gguf_quantize(x, "Q4_0").reshape(-1, 18)
    assert b4[0, :2].tolist() == [0x00, 0x80], "an all-zero block: d = +0.0 / -8 = -0.0"
    y = R.gguf_dequantize(R.gguf_quantize(x, "Q4_K"), "Q4_K")
    assert np.all(np.isfinite(y)) and np.max(np.abs(y - x)) <= 0.2 * np.abs(x).max()


def test_gguf_py_quantizes_and_dequantizes_like_pqref():
    gguf = pytest.importorskip("gguf")
    from gguf import quants

    x = _rows()
    for q in ("Q8_0", "Q4_0"):
        got = quants.quantize(x, getattr(gguf.GGMLQuantizationType, q))
        differ = got != R.gguf_quantize(x, q)
        predicted = np.zeros_like(differ)
        if q == "Q4_0":
            predicted[0, 1] = True  # the sign byte of d in the all-zero block: gguf-py's argmax takes the -0.0
        peer_record.observe("gguf", differ, predicted=predicted, known={"0.19": 1 if q == "Q4_0" else 0},
                            what=f"quants.quantize({q})")  # fmt: skip
    for q in ("Q8_0", "Q4_0", "Q4_K"):
        b = R.gguf_quantize(x, q)
        got = quants.dequantize(b, getattr(gguf.GGMLQuantizationType, q)).astype(F32)
        mine = R.gguf_dequantize(b, q)
        peer_record.observe("gguf", mine.view(np.uint32) != got.view(np.uint32), what=f"quants.dequantize({q})")


def test_gguf_files_round_trip_through_gguf_py(tmp_path):
    gguf = pytest.importorskip("gguf")
    from gguf import quants

    x = _rows(seed=1)
    path = tmp_path / "model.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    mine = {q: R.gguf_quantize(x, q) for q in ("Q8_0", "Q4_0", "Q4_K")}
    for q, b in mine.items():
        writer.add_tensor(f"pqref.{q}", b, raw_dtype=getattr(gguf.GGMLQuantizationType, q))
    theirs = quants.quantize(x, gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("peer.Q8_0", theirs, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tensors = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    for q, b in mine.items():  # pqref writes, gguf-py reads back the same bytes and the same values
        data = np.asarray(tensors[f"pqref.{q}"].data).reshape(b.shape)
        assert np.array_equal(data, b), f"{q}: the bytes gguf-py reads back differ"
        back = quants.dequantize(data, getattr(gguf.GGMLQuantizationType, q)).astype(F32)
        peer_record.observe("gguf", back.view(np.uint32) != R.gguf_dequantize(b, q).view(np.uint32),
                            what=f"dequantize of pqref's {q} file")  # fmt: skip
    data = np.asarray(tensors["peer.Q8_0"].data).reshape(theirs.shape)  # gguf-py writes, pqref decodes
    want = quants.dequantize(data, gguf.GGMLQuantizationType.Q8_0).astype(F32)
    peer_record.observe("gguf", R.gguf_dequantize(data, "Q8_0").view(np.uint32) != want.view(np.uint32),
                        what="pqref's decode of gguf-py's Q8_0 file")  # fmt: skip


@pytest.mark.parametrize("bits", range(1, 9))
def test_compressed_tensors_pack_quantized_round_trips(bits):
    pytest.importorskip("compressed_tensors")
    import torch
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32, unpack_from_int32

    rng = np.random.default_rng(bits)
    for dim in (0, 1):
        q = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(3, 37)).astype(np.int8)
        mine = R.pack_quantized(q, bits=bits, packed_dim=dim)
        # pqref's definition first: every code at stream bit i * bits of its row, offset by 2**(bits - 1)
        rows = (q if dim == 1 else q.T).astype(np.int64) + 2 ** (bits - 1)
        words = (mine if dim == 1 else mine.T).astype(np.int64) & 0xFFFFFFFF
        for r in range(rows.shape[0]):
            stream = sum(int(w) << (32 * k) for k, w in enumerate(words[r]))
            assert [(stream >> (i * bits)) & (2**bits - 1) for i in range(rows.shape[1])] == rows[r].tolist()
        theirs = pack_to_int32(torch.from_numpy(q), bits, dim).numpy()  # the peer writes, pqref reads
        peer_record.observe("compressed-tensors", theirs != mine, what=f"pack_to_int32 bits={bits} dim={dim}")
        assert np.array_equal(R.unpack_quantized(theirs, bits=bits, shape=q.shape, packed_dim=dim), q)
        back = unpack_from_int32(torch.from_numpy(mine), bits, torch.Size(q.shape), dim).numpy()  # and back
        peer_record.observe("compressed-tensors", back != q, what=f"unpack_from_int32 bits={bits} dim={dim}")
