"""The model zoo: plain-PyTorch models with random weights and readable module names.

This package imports only torch and the standard library, so the workload child can use
it under any interpreter that has torch (no pandas, no dnnprof analyzer modules).

=================  ==========================================================  ================
name               what                                                        default input
=================  ==========================================================  ================
resnet10/18/34     ResNet v1, BasicBlock (``layer1.0.conv1`` ...); resnet10    1x3x224x224
                   (one block per stage) is not in the paper: a quick test model
resnet50/101/152   ResNet v1, Bottleneck, stride on the FIRST 1x1 conv of      1x3x224x224
                   down-sampling blocks (matches the corpus ResNet-50)
alexnet            torchvision AlexNet (``features.N``, ``classifier.N``)       1x3x224x224
vgg16              torchvision VGG-16 (``features.N``, ``classifier.N``)        1x3x224x224
mobilenet_v1       MobileNet v1, ``width`` alpha in 0.25/0.5/0.75/1.0          1x3x224x224
                   (``stem.conv``, ``blocks.3.dw.conv``, ``blocks.3.pw.conv``)
dlrm               DLRM: 26 EmbeddingBags (dim 64), bottom MLP 13-512-256-64,  dense 1x13,
                   dot interaction, top MLP 415-512-256-1 (``bot_l.0``,        sparse 1x26
                   ``emb_l.3``, ``interaction``, ``top_l.4``)
dlrm_mlp_reduced   DLRM with bottom MLP 13-128-64, top MLP 415-128-64-1         same
bert_base          BERT-base encoder, HF names (``encoder.layer.0.attention    1x128 tokens
                   .self.query``, ``encoder.layer.0.intermediate.dense``)
bert_small         4-layer BERT (hidden 512, 8 heads, FFN 2048)                1x128 tokens
=================  ==========================================================  ================

Every call in a forward pass is a leaf module (blocks own one ReLU per use, flatten is an
``nn.Flatten``), so forward hooks see everything except functional ops: the residual
adds, DLRM's ``bmm`` inside ``interaction`` (a leaf itself), BERT's attention matmuls
inside ``attention.self``.

``mlp_reduced=True`` halves hidden MLP widths where a model has them: AlexNet/VGG
classifier 4096 -> 2048, BERT feed-forward 3072 -> 1536, DLRM as ``dlrm_mlp_reduced``.
ResNet and MobileNet have no hidden MLP (``ModelSpec.mlp_reduced_note`` is empty).

Use::

    from dnnprof.profiler.models import MODELS, build_model, layer_table
    spec = MODELS["resnet50"]
    model = build_model("resnet50")
    table = layer_table(model, spec.make_input(batch=1))   # on the meta device: no kernels
    summarize("vgg16")                                       # params, FLOPs, layer count
"""

from dnnprof.profiler.models.introspect import (
    count_flops,
    count_params,
    describe_call,
    layer_table,
    leaf_modules,
    module_params,
)
from dnnprof.profiler.models.pruning import PRUNE_MODES, PruneGroup, prune_model
from dnnprof.profiler.models.registry import MODELS, ModelSpec, build_model, get_spec, summarize

__all__ = [
    "MODELS",
    "PRUNE_MODES",
    "ModelSpec",
    "PruneGroup",
    "build_model",
    "count_flops",
    "count_params",
    "describe_call",
    "get_spec",
    "layer_table",
    "leaf_modules",
    "module_params",
    "prune_model",
    "summarize",
]
