"""A BERT-style encoder (Devlin et al. 2018) with Hugging Face's module names.

``embeddings.{word_embeddings,position_embeddings,token_type_embeddings,LayerNorm,dropout}``,
then ``encoder.layer.<i>.attention.self.{query,key,value,softmax,dropout}``,
``encoder.layer.<i>.attention.output.{dense,dropout,LayerNorm}``,
``encoder.layer.<i>.intermediate.{dense,act}``, ``encoder.layer.<i>.output.{dense,dropout,LayerNorm}``,
and ``pooler.{dense,activation}``. The attention matmuls are functional (inside
``attention.self``), the rest are leaf modules. GELU is the erf form, which torch 2.13
sends to oneDNN (``eltwise_gelu_erf``) even in fp32 eager mode.

``mlp_reduced`` halves the feed-forward width (3072 -> 1536 for BERT-base).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dnnprof.profiler.models.pruning import PruneGroup


@dataclass(frozen=True)
class BertConfig:
    layers: int = 12
    hidden: int = 768
    heads: int = 12
    intermediate: int = 3072
    vocab: int = 30522
    max_positions: int = 512


BERT_BASE = BertConfig()
BERT_SMALL = BertConfig(layers=4, hidden=512, heads=8, intermediate=2048)


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab, config.hidden)
        self.position_embeddings = nn.Embedding(config.max_positions, config.hidden)
        self.token_type_embeddings = nn.Embedding(2, config.hidden)
        self.LayerNorm = nn.LayerNorm(config.hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings(torch.zeros_like(input_ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_dim = config.hidden // config.heads
        self.query = nn.Linear(config.hidden, config.hidden)
        self.key = nn.Linear(config.hidden, config.hidden)
        self.value = nn.Linear(config.hidden, config.hidden)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(0.1)

    def _split(self, x: Tensor) -> Tensor:
        # shape[i], not tuple unpacking: FX tracing (int8 variant) cannot unpack a Proxy
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        context = torch.matmul(self.dropout(self.softmax(scores)), v)
        context = context.transpose(1, 2)
        return context.reshape(context.shape[0], context.shape[1], self.heads * self.head_dim)


class BertAddNorm(nn.Module):
    """dense -> dropout -> LayerNorm(+ residual): HF's BertSelfOutput / BertOutput."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, hidden)
        self.dropout = nn.Dropout(0.1)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertAddNorm(config.hidden, config.hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.self(x), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.intermediate)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertAddNorm(config.intermediate, config.hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attention(x)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.layers))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden, config.hidden)
        self.activation = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, config: BertConfig = BERT_BASE, mlp_reduced: bool = False) -> None:
        super().__init__()
        if mlp_reduced:
            config = BertConfig(**{**config.__dict__, "intermediate": config.intermediate // 2})
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.pooler(self.encoder(self.embeddings(input_ids)))

    def prune_groups(self) -> list[PruneGroup]:
        """The feed-forward width of every layer (the hidden size is tied to the residuals)."""
        return [
            PruneGroup(
                f"encoder.layer.{i}.intermediate.dense", None, f"encoder.layer.{i}.output.dense"
            )
            for i in range(self.config.layers)
        ]


def make_inputs(
    batch: int, seq: int, vocab: int, device: str | torch.device = "cpu", seed: int = 0
) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randint(0, vocab, (batch, seq), generator=generator).to(device),)
