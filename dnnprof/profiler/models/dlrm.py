"""DLRM (Naumov et al. 2019) in the Criteo Kaggle configuration, plain PyTorch.

* 13 dense features through the bottom MLP ``bot_l`` (13-512-256-64, ReLU after each layer);
* 26 categorical features, one ``nn.EmbeddingBag`` each (``emb_l.<i>``, dimension 64, sum
  pooling, one index per sample); table sizes are capped (``rows``, 4096 by default) so the
  random model stays small; the row count does not change any oneDNN call;
* ``interaction``: dot products between the 27 vectors (upper triangle, no self pairs, a
  ``torch.bmm``), concatenated with the bottom MLP output: 64 + 27*26/2 = 415 features;
* top MLP ``top_l`` (415-512-256-1, ReLU between, ``sigmoid`` at the end).

The MLP-reduced model keeps the embeddings and the dot interaction and shrinks the MLPs:
bottom 13-128-64, top 415-128-64-1.

Linear layers are ``bot_l.<k>`` / ``top_l.<k>`` with the ReLUs in between, as in the
reference implementation (``dlrm_s_pytorch.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dnnprof.profiler.models.pruning import PruneGroup

DENSE_FEATURES = 13
SPARSE_FEATURES = 26
EMBEDDING_DIM = 64
BOTTOM_MLP = (512, 256, 64)
TOP_MLP = (512, 256, 1)
BOTTOM_MLP_REDUCED = (128, 64)
TOP_MLP_REDUCED = (128, 64, 1)


def _mlp(sizes: list[int], final_sigmoid: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(n_in, n_out))
        last = index == len(sizes) - 2
        layers.append(nn.Sigmoid() if last and final_sigmoid else nn.ReLU())
    return nn.Sequential(*layers)


class DotInteraction(nn.Module):
    """Pairwise dot products of the dense vector and the pooled embeddings (no self pairs)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        rows, cols = torch.tril_indices(count, count, offset=-1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, dense: Tensor, sparse: list[Tensor]) -> Tensor:
        # shape[i], not tuple unpacking: FX tracing (int8 variant) cannot unpack a Proxy
        stacked = torch.cat([dense] + sparse, dim=1).view(dense.shape[0], -1, dense.shape[1])
        products = torch.bmm(stacked, stacked.transpose(1, 2))
        return torch.cat([dense, products[:, self.rows, self.cols]], dim=1)


class DLRM(nn.Module):
    def __init__(self, mlp_reduced: bool = False, rows: int = 4096) -> None:
        super().__init__()
        bottom = BOTTOM_MLP_REDUCED if mlp_reduced else BOTTOM_MLP
        top = TOP_MLP_REDUCED if mlp_reduced else TOP_MLP
        if bottom[-1] != EMBEDDING_DIM:
            raise ValueError("the bottom MLP must end at the embedding dimension")
        self.mlp_reduced = mlp_reduced
        self.bot_l = _mlp([DENSE_FEATURES, *bottom], final_sigmoid=False)
        self.emb_l = nn.ModuleList(
            nn.EmbeddingBag(rows, EMBEDDING_DIM, mode="sum") for _ in range(SPARSE_FEATURES)
        )
        vectors = SPARSE_FEATURES + 1
        self.interaction = DotInteraction(vectors)
        interaction_width = EMBEDDING_DIM + vectors * (vectors - 1) // 2
        self.top_l = _mlp([interaction_width, *top], final_sigmoid=True)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                # dlrm_s_pytorch.py initialisation: normal with Glorot-like scale
                fan_in, fan_out = module.in_features, module.out_features
                nn.init.normal_(module.weight, 0.0, (2.0 / (fan_in + fan_out)) ** 0.5)
                nn.init.normal_(module.bias, 0.0, (1.0 / fan_out) ** 0.5)
            elif isinstance(module, nn.EmbeddingBag):
                bound = (1.0 / module.num_embeddings) ** 0.5
                nn.init.uniform_(module.weight, -bound, bound)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        x = self.bot_l(dense)
        pooled = [table(sparse[:, i : i + 1]) for i, table in enumerate(self.emb_l)]
        return self.top_l(self.interaction(x, pooled))

    def prune_groups(self) -> list[PruneGroup]:
        """Hidden Linear widths only: the bottom output must stay the embedding dimension."""
        groups = []
        for mlp_name in ("bot_l", "top_l"):
            mlp = getattr(self, mlp_name)
            linears = [f"{mlp_name}.{i}" for i, m in enumerate(mlp) if isinstance(m, nn.Linear)]
            groups += [
                PruneGroup(a, None, b) for a, b in zip(linears[:-1], linears[1:], strict=False)
            ]
        return groups


def make_inputs(
    batch: int, rows: int = 4096, device: str | torch.device = "cpu", seed: int = 0
) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    dense = torch.rand(batch, DENSE_FEATURES, generator=generator)
    sparse = torch.randint(0, rows, (batch, SPARSE_FEATURES), generator=generator)
    return dense.to(device), sparse.to(device)
