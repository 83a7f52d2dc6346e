"""Attention layers with fewer heads than their embedding dimension implies.

``nn.MultiheadAttention`` and torchvision's Swin ``ShiftedWindowAttention`` compute
``num_heads * head_dim == embed_dim`` features inside, so they cannot lose heads while
their input and output keep their width. Head pruning replaces them with
:class:`PrunedMultiheadAttention` (the same call, ``attn(query, key, value,
need_weights=False)``, and the same ``(output, weights)`` pair) and
:class:`PrunedShiftedWindowAttention`, with the kept heads' weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PrunedMultiheadAttention", "PrunedShiftedWindowAttention", "head_rows"]


def head_rows(heads: torch.Tensor, head_dim: int, width: int, parts: int) -> torch.Tensor:
    """Rows of ``heads`` in a projection stacking ``parts`` blocks of ``width`` rows (3 for
    query, key and value; 1 for the columns of the output projection)."""
    rows = (heads.unsqueeze(1) * head_dim + torch.arange(head_dim)).flatten()
    return torch.cat([rows + k * width for k in range(parts)])


class PrunedMultiheadAttention(nn.Module):
    """Attention over ``num_heads`` heads of ``head_dim`` features, reading and writing
    ``embed_dim`` features (made by :func:`~nasforge.prune_channels` from an
    ``nn.MultiheadAttention``)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        head_dim: int,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.dropout, self.batch_first = dropout, batch_first
        inner = num_heads * head_dim
        self.in_proj = nn.Linear(embed_dim, 3 * inner, bias=bias)
        self.out_proj = nn.Linear(inner, embed_dim, bias=bias)

    @classmethod
    def from_attention(
        cls, attention: nn.MultiheadAttention, heads: torch.Tensor
    ) -> PrunedMultiheadAttention:
        """The ``heads`` (indices) of ``attention``, with their weights."""
        head_dim = attention.embed_dim // attention.num_heads
        rows = head_rows(heads, head_dim, attention.embed_dim, 1)
        qkv = head_rows(heads, head_dim, attention.embed_dim, 3)
        pruned = cls(
            attention.embed_dim,
            len(heads),
            head_dim,
            bias=attention.in_proj_bias is not None,
            dropout=attention.dropout,
            batch_first=attention.batch_first,
        )
        weight = attention.in_proj_weight
        with torch.no_grad():
            pruned.in_proj.weight.copy_(weight[qkv])
            pruned.out_proj.weight.copy_(attention.out_proj.weight[:, rows])
            if attention.in_proj_bias is not None:
                pruned.in_proj.bias.copy_(attention.in_proj_bias[qkv])
                pruned.out_proj.bias.copy_(attention.out_proj.bias)
        pruned.train(attention.training)
        return pruned.to(device=weight.device, dtype=weight.dtype)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As ``nn.MultiheadAttention.forward``."""
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if query is key and key is value:  # self-attention: one matrix product
            q, k, v = self.in_proj(query).chunk(3, dim=-1)
        else:
            w_q, w_k, w_v = self.in_proj.weight.chunk(3)
            b_q, b_k, b_v = (
                self.in_proj.bias.chunk(3) if self.in_proj.bias is not None else (None, None, None)
            )
            q, k = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k)
            v = F.linear(value, w_v, b_v)
        batch, length = q.shape[0], q.shape[1]
        q, k, v = (
            t.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2) for t in (q, k, v)
        )
        mask = _merge_masks(attn_mask, key_padding_mask, q.dtype)
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = q @ k.transpose(-2, -1) / self.head_dim**0.5
            if is_causal and mask is None:
                scores = scores.masked_fill(
                    torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf")
                )
            if mask is not None:
                scores = scores + mask
            weights = F.dropout(scores.softmax(-1), dropout, self.training)
            out = weights @ v
            if average_attn_weights:
                weights = weights.mean(1)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal and mask is None
            )
        out = self.out_proj(out.transpose(1, 2).reshape(batch, length, -1))
        return (out if self.batch_first else out.transpose(0, 1)), weights

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}, "
            f"batch_first={self.batch_first}"
        )


def _merge_masks(
    attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor | None:
    """``nn.MultiheadAttention``'s masks (True or -inf: not attended) as one additive mask
    broadcast over ``[batch, heads, query, key]``."""
    merged = None
    for mask, shape in ((attn_mask, None), (key_padding_mask, "padding")):
        if mask is None:
            continue
        if mask.dtype == torch.bool:
            mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
                mask, float("-inf")
            )
        mask = mask.to(dtype)
        if shape == "padding":
            mask = mask[:, None, None, :]
        elif mask.dim() == 3:
            raise NotImplementedError(
                "a per-head attn_mask ([batch * heads, query, key]) after head pruning: the "
                "masks of the removed heads would have to go too. HINT: pass one 2-D mask"
            )
        merged = mask if merged is None else merged + mask
    return merged


class PrunedShiftedWindowAttention(nn.Module):
    """Swin's shifted-window attention (Liu et al. 2021) over ``num_heads`` heads of
    ``head_dim`` features, reading and writing ``dim`` features (made by
    :func:`~nasforge.prune_channels` from torchvision's ``ShiftedWindowAttention``)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        window_size: list[int],
        shift_size: list[int],
        *,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.window_size, self.shift_size = list(window_size), list(shift_size)
        self.attention_dropout, self.dropout = attention_dropout, dropout
        inner = num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, dim, bias=proj_bias)
        positions = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(positions, num_heads))
        cells = window_size[0] * window_size[1]
        self.register_buffer(
            "relative_position_index", torch.zeros(cells * cells, dtype=torch.long)
        )

    @classmethod
    def from_attention(
        cls, attention: nn.Module, heads: torch.Tensor
    ) -> PrunedShiftedWindowAttention:
        """The ``heads`` (indices) of a torchvision ``ShiftedWindowAttention``."""
        dim = attention.qkv.in_features
        head_dim = dim // attention.num_heads
        pruned = cls(
            dim,
            len(heads),
            head_dim,
            attention.window_size,
            attention.shift_size,
            qkv_bias=attention.qkv.bias is not None,
            proj_bias=attention.proj.bias is not None,
            attention_dropout=attention.attention_dropout,
            dropout=attention.dropout,
        )
        qkv, rows = head_rows(heads, head_dim, dim, 3), head_rows(heads, head_dim, dim, 1)
        with torch.no_grad():
            pruned.qkv.weight.copy_(attention.qkv.weight[qkv])
            pruned.proj.weight.copy_(attention.proj.weight[:, rows])
            if attention.qkv.bias is not None:
                pruned.qkv.bias.copy_(attention.qkv.bias[qkv])
            if attention.proj.bias is not None:
                pruned.proj.bias.copy_(attention.proj.bias)
            pruned.relative_position_bias_table.copy_(
                attention.relative_position_bias_table[:, heads]
            )
            pruned.relative_position_index.copy_(attention.relative_position_index)
        pruned.train(attention.training)
        weight = attention.qkv.weight
        return pruned.to(device=weight.device, dtype=weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[batch, height, width, dim]``, as torchvision's Swin blocks give it."""
        batch, height, width, dim = x.shape
        (w0, w1), cells = self.window_size, self.window_size[0] * self.window_size[1]
        x = F.pad(x, (0, 0, 0, (w1 - width % w1) % w1, 0, (w0 - height % w0) % w0))
        padded_h, padded_w = x.shape[1], x.shape[2]
        shift = [
            0 if w0 >= padded_h else self.shift_size[0],
            0 if w1 >= padded_w else self.shift_size[1],
        ]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        rows, cols = padded_h // w0, padded_w // w1
        windows = x.view(batch, rows, w0, cols, w1, dim).permute(0, 1, 3, 2, 4, 5)
        windows = windows.reshape(-1, cells, dim)
        qkv = self.qkv(windows).reshape(-1, cells, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q * self.head_dim**-0.5) @ k.transpose(-2, -1) + self._position_bias(cells)
        if sum(shift) > 0:
            mask = self._shift_mask(padded_h, padded_w, shift, x)
            attn = attn.view(batch, rows * cols, self.num_heads, cells, cells) + mask[None, :, None]
            attn = attn.view(-1, self.num_heads, cells, cells)
        attn = F.dropout(attn.softmax(-1), self.attention_dropout, self.training)
        out = (attn @ v).transpose(1, 2).reshape(-1, cells, self.num_heads * self.head_dim)
        out = F.dropout(self.proj(out), self.dropout, self.training)
        out = out.view(batch, rows, cols, w0, w1, dim).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(batch, padded_h, padded_w, dim)
        if sum(shift) > 0:
            out = torch.roll(out, shifts=(shift[0], shift[1]), dims=(1, 2))
        return out[:, :height, :width, :].contiguous()

    def _position_bias(self, cells: int) -> torch.Tensor:
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(cells, cells, -1).permute(2, 0, 1).unsqueeze(0)

    def _shift_mask(
        self, height: int, width: int, shift: list[int], like: torch.Tensor
    ) -> torch.Tensor:
        """-100 between cells of a window that came from different regions of the image
        before the cyclic shift, 0 elsewhere: ``[windows, cells, cells]``."""
        (w0, w1), cells = self.window_size, self.window_size[0] * self.window_size[1]

        def regions(size: int, window: int, shift: int) -> torch.Tensor:
            index = torch.arange(size, device=like.device)
            return (index >= size - window).long() + (index >= size - shift).long()

        region = regions(height, w0, shift[0])[:, None] * 3 + regions(width, w1, shift[1])
        region = region.view(height // w0, w0, width // w1, w1).permute(0, 2, 1, 3)
        region = region.reshape(-1, cells)
        differ = region.unsqueeze(1) != region.unsqueeze(2)
        return torch.zeros(differ.shape, dtype=like.dtype, device=like.device).masked_fill(
            differ, -100.0
        )

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, head_dim={self.head_dim}, "
            f"window_size={self.window_size}, shift_size={self.shift_size}"
        )
