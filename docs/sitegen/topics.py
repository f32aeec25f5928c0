"""The reader's map of the registry: topics (the site's navigation), each entry's common name and aliases (its page
title and what the search finds it by), and its "see also" links.

A registry entry is placed by `TOPIC_OF[name]`, else by its module (`MODULE_TOPIC`), else by its family
(`FAMILY_TOPIC`), so a new entry always lands somewhere; `tests/test_docs_rules.py` checks that every entry has a
topic and a common name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    slug: str  # the page algorithms/<slug>.md; entry names have no hyphen, slugs have one or are unique words
    title: str
    intro: str


TOPICS = (
    Topic(
        "rounding-modes",
        "Rounding",
        "How a real number becomes an integer: to nearest with ties to even or away from zero, floor, ceiling, "
        "and stochastic rounding from an explicit key. Every quantizer's `rounding=` is one of these.",
    ),
    Topic(
        "random-keys",
        "Random keys",
        "Counter-based random numbers (Threefry-2x32): every random choice in pqref (stochastic rounding, random "
        "pruning, BinaryConnect) is a pure function of a key, the same bits on every device.",
    ),
    Topic(
        "exact-primitives",
        "Exact primitives",
        "Sums, norms, dot products, selection and transcendental functions whose results do not depend on the "
        "order of evaluation, the device or the library: the building blocks every other entry reduces through.",
    ),
    Topic(
        "linear-algebra",
        "Linear algebra",
        "Cholesky factorization, triangular solves and inverses with every entry one exact inner product and one "
        "rounding: the factorizations behind GPTQ and SparseGPT.",
    ),
    Topic(
        "affine-quantization",
        "Affine quantization",
        "Integer quantization `q = clip(rne(x / s) + z)`: code ranges, scales and zero points (and how peers choose "
        "them), quantize, dequantize and fake quantization with a straight-through gradient.",
    ),
    Topic(
        "binary-ternary",
        "Binary and ternary",
        "One- and two-bit weights: sign binarization (BNN, BinaryConnect, XNOR-Net) and ternary weights (TWN, TTQ).",
    ),
    Topic(
        "learned-step",
        "Learned step and clipping",
        "Quantization-aware training with learned or bounded ranges: LSQ and LSQ+ (a learned step), PACT (a "
        "learned clipping level) and DoReFa.",
    ),
    Topic(
        "floats-mx",
        "Floats, MX and NVFP4",
        "Low-bit floating-point formats (FP8 E4M3 / E5M2, FP6, FP4 E2M1, E8M0), OCP microscaling (MX) blocks, "
        "NVFP4 and power-of-two (INQ) levels.",
    ),
    Topic(
        "codebooks-nf4",
        "Codebooks and NF4",
        "Weights as indices into a table of values: k-means weight sharing (Deep Compression) and QLoRA's NF4 with "
        "block-wise absmax scales and double quantization.",
    ),
    Topic(
        "observers",
        "Observers and calibration",
        "How a quantization range is chosen from data: running min-max and moving-average observers, percentile "
        "and MSE-optimal clipping.",
    ),
    Topic(
        "packing",
        "Bit packing",
        "Codes of 1 to 16 bits packed into bytes, and 4-bit codes two per byte in either nibble order.",
    ),
    Topic(
        "checkpoint-codecs",
        "Checkpoint formats",
        "The on-disk layouts of quantized checkpoints, decoded bit for bit with NumPy alone: GPTQ, AWQ, GGUF and "
        "compressed-tensors.",
    ),
    Topic(
        "pruning-criteria",
        "Pruning criteria",
        "Unstructured pruning: which weights go, by magnitude (per tensor or globally), by a saliency score "
        "(movement, SNIP, Wanda) or at random, and how a mask is applied.",
    ),
    Topic(
        "structured-nm",
        "Structured and N:M",
        "Pruning whole units: channels and filters by norm, Taylor importance or FPGM, network slimming, channel "
        "groups, b0 x b1 blocks and N:M sparsity (2:4).",
    ),
    Topic(
        "schedules",
        "Schedules and iterative pruning",
        "How sparsity grows during training: gradual (AGP), linear, cosine and exponential schedules, iterative "
        "magnitude pruning and lottery-ticket rewinding.",
    ),
    Topic(
        "regularization",
        "Regularization",
        "Penalties that drive weights or groups to zero: L1 and group lasso, their gradients and proximal steps.",
    ),
    Topic(
        "sparse-formats",
        "Sparse formats",
        "Storing a pruned tensor: bitmask and CSR encodings, and the bytes each format takes.",
    ),
    Topic(
        "post-training",
        "Post-training: GPTQ, SparseGPT, rotations",
        "One-shot compression after training from calibration data: the Hessian, GPTQ, SparseGPT and the "
        "methods that prepare weights for them, in exact arithmetic.",
    ),
    Topic(
        "more-quantization",
        "More quantization",
        "Quantization entries not yet placed in a topic of their own.",
    ),
    Topic("more-pruning", "More pruning", "Pruning entries not yet placed in a topic of their own."),
)
TOPIC = {t.slug: t for t in TOPICS}

MODULE_TOPIC = {
    "core.rounding": "rounding-modes",
    "core.random": "random-keys",
    "core.reduce": "exact-primitives",
    "core.exact": "exact-primitives",
    "core.select": "exact-primitives",
    "core.transcendental": "exact-primitives",
    "core.linalg": "linear-algebra",
    "quantization.affine": "affine-quantization",
    "quantization.conventions": "affine-quantization",
    "quantization.dynamic": "affine-quantization",
    "quantization.binary": "binary-ternary",
    "quantization.ternary": "binary-ternary",
    "quantization.lsq": "learned-step",
    "quantization.pact": "learned-step",
    "quantization.dorefa": "learned-step",
    "quantization.floats": "floats-mx",
    "quantization.mx": "floats-mx",
    "quantization.power_of_two": "floats-mx",
    "codecs.nvfp4": "floats-mx",
    "quantization.codebook": "codebooks-nf4",
    "quantization.nf4": "codebooks-nf4",
    "quantization.observers": "observers",
    "quantization.packing": "packing",
    "codecs.nibbles": "packing",
    "codecs.gptq": "checkpoint-codecs",
    "codecs.awq": "checkpoint-codecs",
    "codecs.gguf": "checkpoint-codecs",
    "codecs.compressed_tensors": "checkpoint-codecs",
    "pruning.magnitude": "pruning-criteria",
    "pruning.saliency": "pruning-criteria",
    "pruning.random": "pruning-criteria",
    "pruning.structured": "structured-nm",
    "pruning.groups": "structured-nm",
    "pruning.slimming": "structured-nm",
    "pruning.schedules": "schedules",
    "pruning.lottery": "schedules",
    "pruning.regularization": "regularization",
    "pruning.sparse_formats": "sparse-formats",
}
FAMILY_TOPIC = {
    "core": "exact-primitives",
    "quantization": "more-quantization",
    "codecs": "checkpoint-codecs",
    "pruning": "more-pruning",
    "posttraining": "post-training",
}
TOPIC_OF = {  # entries placed away from their module's topic
    "taylor_scores": "structured-nm",
    "taylor_mask": "structured-nm",
    "fpgm_scores": "structured-nm",
    "fpgm_mask": "structured-nm",
    "block_scores": "structured-nm",
    "block_mask": "structured-nm",
    "slimming_penalty_grad": "regularization",
}

# name: "Common name | alias; alias; ...". The common name titles the page ("LSQ — `lsq_quantize`") and the
# navigation; the aliases are shown under the title and weigh most in the search.
NAMES_TABLE = """
tree_sum: Pairwise tree sum | canonical sum; reproducible sum; pairwise summation; deterministic reduction
tree_mean: Tree mean | canonical mean; reproducible mean; average
lp_norm: L1 and L2 norms | vector norm; Euclidean norm; Manhattan norm; lp norm
round_half_even: Round half to even | banker's rounding; roundTiesToEven; rint; round to nearest even; RNE
round_half_away: Round half away from zero | round half up; commercial rounding; C round; ties away
round_floor: Floor | round down; round toward minus infinity
round_ceil: Ceiling | round up; round toward plus infinity
round_stochastic: Stochastic rounding | random rounding; probabilistic rounding; unbiased rounding; SR
round_with: Rounding by name | rounding mode; rounding parameter
threefry2x32: Threefry-2x32 | counter-based random number generator; Random123; block cipher PRNG
make_key: Random key from a seed | PRNG key; seed
split: Split a key | key splitting; independent streams
fold_in: Fold an integer into a key | per-step key; per-layer key
random_bits: Random bits | uniform integers; random uint32
uniform: Uniform random numbers | uniform floats; random [0, 1)
keep_largest: Keep the largest | top-k mask; stable top-k; largest scores
exact_sum: Exact sum | correctly rounded sum; fsum; superaccumulator; reproducible sum
exact_sum_state: Exact sum state | superaccumulator state; fixed-point accumulator; sharded sum
exact_sum_combine: Combine exact sum states | distributed exact sum; all-reduce
exact_sum_round: Round an exact sum state | superaccumulator rounding
exact_dot: Exact dot product | correctly rounded dot product; inner product
exact_matmul: Exact matrix product | reproducible matmul; Ozaki scheme; correctly rounded GEMM
exact_gram: Exact Gram matrix | X^T X; covariance; Hessian of least squares
cholesky: Cholesky factorization | LL^T; Cholesky decomposition; reproducible Cholesky
triangular_solve: Triangular solve | forward substitution; back substitution; trsm
cholesky_inverse: Inverse from a Cholesky factor | potri; SPD inverse; inverse Hessian
cr_exp: Exponential, correctly rounded | exp; e**x; correctly rounded exp
cr_log: Logarithm, correctly rounded | log; natural logarithm; ln
cr_pow: Power, correctly rounded | pow; x**y
cr_sigmoid: Sigmoid, correctly rounded | logistic function; sigmoid
cr_sqrt: Square root, correctly rounded | sqrt; correctly rounded square root
integer_range: Integer code range | qmin qmax; quant_min quant_max; narrow range; int8 range
qparams_from_range: Scale and zero point from a range | quantization parameters; qparams; calculate_qparams
minmax_qparams: Min-max calibration | min-max scale; per-channel scale; per-group scale; absmax calibration
quantize: Affine quantization | QuantizeLinear; uniform quantization; integer quantization; int8 quantization
dequantize: Affine dequantization | DequantizeLinear; dequantization
fake_quantize: Fake quantization | quantize-dequantize; QDQ; simulated quantization; FakeQuantize; straight-through estimator; STE; per-channel fake quantization; group-wise quantization
binarize: Sign binarization | BNN; binarized neural networks; sign function; binary weights
binary_connect: BinaryConnect | stochastic binarization; hard sigmoid binarization; binary weights
xnor_scale: XNOR-Net scale | BWN scale; binary weight networks; mean absolute value scale
xnor_binarize: XNOR-Net | BWN; binary weight networks; scaled binarization
twn_params: TWN threshold and scale | ternary weight networks threshold; 0.7 mean
twn_ternarize: TWN | ternary weight networks; ternarization; ternary quantization
ttq_quantize: TTQ | trained ternary quantization; learned ternary scales
dorefa_weight: DoReFa weights | DoReFa-Net; tanh weight quantization
dorefa_activation: DoReFa activations | DoReFa-Net; clipped activation quantization
pact_quantize: PACT | parameterized clipping activation; learned clipping
lsq_grad_scale: LSQ gradient scale | 1/sqrt(N Qp); step gradient scale
lsq_init_scale: LSQ initial step | LSQ step initialization; 2 mean|w| / sqrt(Qp)
lsq_quantize: LSQ | learned step size quantization; learnable scale; LSQ fake quantization
lsq_plus_quantize: LSQ+ | learnable offset; learned offset and step
float_encode: Low-bit float encoding | FP8; E4M3; E5M2; FP6; FP4; E2M1; E8M0; float8; minifloat
float_decode: Low-bit float decoding | FP8 decode; E4M3; E5M2; FP4; E2M1; E8M0; minifloat
float_quantize: Low-bit float fake quantization | FP8 fake quantization; FP4 quantization; minifloat rounding
mx_quantize: MX block quantization | microscaling; MXFP8; MXFP6; MXFP4; MXINT8; OCP MX; shared exponent
mx_dequantize: MX dequantization | microscaling decode; MXFP4 decode
mx_fake_quantize: MX fake quantization | microscaling fake quantization; MXFP4 QDQ
pow2_exponent_range: Power-of-two exponent range | INQ exponents; logarithmic quantization range
pow2_emax: Power-of-two largest exponent | INQ n1
pow2_quantize: Power-of-two quantization | INQ; incremental network quantization; logarithmic quantization; log2 quantization
pow2_encode: Power-of-two codes | sign-magnitude exponent codes
pow2_decode: Power-of-two decoding | exponent codes to values
kmeans_codebook: k-means weight sharing | Deep Compression; codebook quantization; weight clustering; Lloyd
codebook_assign: Nearest codebook entry | codebook assignment; vector quantization assignment
codebook_decode: Codebook decoding | shared weights lookup; table lookup
nf4_quantize: NF4 | NormalFloat4; QLoRA; 4-bit NormalFloat; bitsandbytes nf4
nf4_dequantize: NF4 dequantization | NormalFloat4 decode; QLoRA dequantize
nf4_double_quantize: NF4 double quantization | QLoRA double quantization; quantized absmax
nf4_double_dequantize: NF4 double dequantization | QLoRA absmax decode
minmax_observer: Min-max observer | MinMaxObserver; PerChannelMinMaxObserver; running min max
ema_minmax_observer: Moving-average min-max observer | MovingAverageMinMaxObserver; EMA observer
percentile_amax: Percentile calibration | percentile clipping; 99.99 percentile; histogram calibration
mse_amax: MSE calibration | MSE-optimal clipping; minimum mean squared error range
pack_bits: Bit packing | pack codes; int4 packing; sub-byte packing
unpack_bits: Bit unpacking | unpack codes
gptq_pack: GPTQ checkpoint packing | qweight; qzeros; g_idx; AutoGPTQ format
gptq_unpack: GPTQ checkpoint unpacking | qweight; qzeros; AutoGPTQ format
gptq_decode: GPTQ checkpoint decoding | dequantize GPTQ weights
nvfp4_global_scale: NVFP4 global scale | per-tensor scale; amax / 2688
nvfp4_quantize: NVFP4 | NVIDIA FP4; E2M1 with E4M3 block scales; Blackwell FP4
nvfp4_dequantize: NVFP4 dequantization | NVIDIA FP4 decode
pack_nibbles: Nibble packing | two 4-bit codes per byte; int4 packing; high nibble first
unpack_nibbles: Nibble unpacking | 4-bit unpacking
symmetric_scale: Symmetric scale conventions | amax / 127; amax / 127.5; half range
affine_zero_point: Zero point conventions | zero point rounding; torch.ao; ONNX; TFLite
gguf_quantize: GGUF quantization | llama.cpp; Q8_0; Q4_0; Q4_K; k-quants
gguf_dequantize: GGUF dequantization | llama.cpp; dequantize_row
awq_pack: AWQ checkpoint packing | AutoAWQ; GEMM layout; qweight order 0 2 4 6 1 3 5 7
awq_unpack: AWQ checkpoint unpacking | AutoAWQ
awq_decode: AWQ checkpoint decoding | AutoAWQ dequantize
pack_quantized: compressed-tensors packing | pack-quantized; llm-compressor; int32 words
unpack_quantized: compressed-tensors unpacking | pack-quantized decode
pruned_count: Pruned count | how many to prune; round(sparsity * n)
magnitude_mask: Magnitude pruning | L1 unstructured; unstructured pruning; l1_unstructured; weight pruning
magnitude_mask_by_count: Magnitude pruning by count | prune k smallest
magnitude_mask_by_threshold: Magnitude pruning by threshold | threshold pruning; hard threshold
global_magnitude_masks: Global magnitude pruning | global_unstructured; global pruning
apply_mask: Apply a mask | masking; where(mask, w, 0)
ln_structured_mask: Ln structured pruning | channel pruning; filter pruning; ln_structured; L1 norm filter pruning
nm_mask: N:M sparsity | 2:4 sparsity; semi-structured sparsity; fine-grained structured sparsity; sparse tensor cores
random_mask: Random pruning | random unstructured
l1_penalty: L1 penalty | lasso; L1 regularization; weight decay L1
l1_subgradient: L1 subgradient | sign(w) regularization
l1_proximal: Soft thresholding | L1 proximal step; ISTA; shrinkage
group_lasso_penalty: Group lasso | structured sparsity learning; SSL; group regularization
group_lasso_proximal: Block soft thresholding | group lasso proximal step
slimming_penalty_grad: Sparsity term on batch-norm scales | L1 on batch-norm scales; gamma regularization
slimming_masks: Network slimming | network slimming channel pruning; channel pruning by batch-norm scale; gamma pruning
agp_sparsity: AGP | automated gradual pruning; Zhu and Gupta; cubic sparsity schedule; gradual pruning
linear_sparsity: Linear sparsity schedule | linear ramp
cosine_sparsity: Cosine sparsity schedule | half-cosine ramp
exponential_sparsity: Exponential sparsity schedule | geometric density decay
iterative_sparsities: Iterative pruning sparsities | rounds of pruning; cumulative sparsity
prune_remaining_mask: Prune a fraction of the remaining weights | iterative magnitude pruning round
prune_total_mask: Prune a fraction of all weights | iterative magnitude pruning round
score_mask: Pruning by any score | saliency mask; score-based pruning
movement_scores: Movement pruning | movement scores; Sanh
snip_scores: SNIP | connection sensitivity; single-shot pruning
taylor_scores: Taylor importance | first-order Taylor; Molchanov
taylor_mask: Taylor pruning | first-order Taylor channel pruning
wanda_scores: Wanda scores | pruning by weights and activations
wanda_mask: Wanda | pruning by weights and activations; LLM pruning
fpgm_scores: FPGM scores | geometric median distance
fpgm_mask: FPGM | filter pruning via geometric median
block_scores: Block scores | tile norms
block_mask: Block sparsity | block pruning; tile pruning
imp_mask: Iterative magnitude pruning | IMP; lottery ticket pruning round
lottery_rewind: Lottery ticket rewinding | weight rewinding; winning ticket
imp_schedule: IMP survivor counts | iterative magnitude pruning schedule
to_bitmask: Bitmask encoding | sparse bitmask; packed mask
from_bitmask: Bitmask decoding | sparse bitmask decode
to_csr: CSR encoding | compressed sparse row
from_csr: CSR decoding | compressed sparse row decode
dense_bytes: Dense size in bytes | storage size
bitmask_bytes: Bitmask size in bytes | storage size
csr_bytes: CSR size in bytes | storage size
quantized_bytes: Quantized size in bytes | storage size; model size
group_scores: Channel group scores | dependency group importance; DepGraph; coupled channels
group_masks: Channel group masks | dependency group pruning; global group pruning
gptq_hessian: GPTQ Hessian | calibration Hessian; 2 X^T X / n
gptq_damp: GPTQ damping | percdamp; dead inputs
gptq_order: GPTQ act-order | desc_act; activation order
gptq_factor: GPTQ inverse-Hessian factor | Cholesky of the inverse Hessian
gptq: GPTQ | OPTQ; optimal brain quantization; post-training quantization; error feedback
sparsegpt: SparseGPT | one-shot pruning; optimal brain surgeon; OBS; 2:4 SparseGPT
per_token_fake_quantize: Dynamic per-token quantization | per-token activation quantization; dynamic quantization; W8A8 activations
awq_act_scale: AWQ activation statistic | mean |x| per input channel; activation-aware
awq_scales: AWQ scales | activation-aware scaling; s_x**alpha
awq: AWQ | activation-aware weight quantization; AutoAWQ; scale search
smoothquant_scales: SmoothQuant scales | migration strength alpha; smoothing factors
smoothquant: SmoothQuant | W8A8; activation smoothing; outlier migration
hqq_shrink: HQQ shrinkage | generalized soft thresholding; lp shrinkage
hqq: HQQ | half-quadratic quantization; calibration-free quantization; zero-point optimization
hadamard_matrix: Hadamard matrix | QuaRot; Sylvester construction; random Hadamard
hadamard_transform: Hadamard rotation | QuaRot; SpinQuant; incoherence processing; random Hadamard transform
"""


def _table() -> dict[str, tuple[str, tuple[str, ...]]]:
    out = {}
    for line in NAMES_TABLE.strip().splitlines():
        name, _, rest = line.partition(":")
        title, _, aliases = rest.partition("|")
        if title.strip() == "-":
            continue
        out[name.strip()] = (title.strip(), tuple(a.strip() for a in aliases.split(";") if a.strip()))
    return out


NAMES = _table()


def topic_of(e) -> str:
    return TOPIC_OF.get(e.name) or MODULE_TOPIC.get(e.module) or FAMILY_TOPIC.get(e.family, "more-quantization")


def common_name(e) -> str | None:
    """The entry's common name, None where the table has none (then the function name stands alone)."""
    return NAMES.get(e.name, (None, ()))[0]


def aliases(e) -> tuple[str, ...]:
    return NAMES.get(e.name, (None, ()))[1]


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def mentioned(s: str, names) -> list[str]:
    """Entry names that occur in `s` as whole words, in order of first occurrence."""
    return list(dict.fromkeys(w for w in _WORD.findall(s) if w in names))


def see_also(e, registry, doc: str = "", limit: int = 8) -> list[str]:
    """Related entries: those this entry's text names (summary, semantics, goldens' why, its docstring), those
    whose text names it, then its siblings in the same module; never itself or its own VJP (on its page)."""
    vjps = {x.vjp for x in registry.values() if x.vjp}
    skip = {e.name, e.vjp}
    own = " ".join([e.summary, *e.semantics, *(g.why for g in e.golden), doc])
    names = {n for n in registry if n not in vjps}
    found = [n for n in mentioned(own, names) if n not in skip and ("_" in n or len(n) > 8)]
    for x in registry.values():
        if x.name in vjps or x.name in skip:
            continue
        if e.name in _WORD.findall(" ".join([x.summary, *x.semantics])):
            found.append(x.name)
    found += [x.name for x in registry.values() if x.module == e.module and x.name not in vjps and x.name not in skip]
    return list(dict.fromkeys(found))[:limit]
