"""Pure-torch stand-ins for the two ``sgl_kernel`` CPU functions SGLang 0.5.23 imports
(test support only; see ../README.md)."""

import ctypes

import torch


def assign_req_to_token_pool_cpu(
    req_pool_indices: torch.Tensor,
    req_to_token: torch.Tensor,
    start_offset: torch.Tensor,
    end_offset: torch.Tensor,
    out_cache_loc: torch.Tensor,
    max_context_len: int,
) -> None:
    """Write each request's new KV-cache locations into its row of the token pool."""
    taken = 0
    for row, start, end in zip(
        req_pool_indices.tolist(), start_offset.tolist(), end_offset.tolist(), strict=True
    ):
        length = end - start
        req_to_token[row, start:end] = out_cache_loc[taken : taken + length]
        taken += length


def copy_all_layer_kv_cache_cpu(
    data_ptrs: torch.Tensor, strides: torch.Tensor, tgt_loc: torch.Tensor, src_loc: torch.Tensor
) -> None:
    """Copy KV-cache slots ``src_loc`` to ``tgt_loc`` in every layer's buffer (given as raw
    addresses and per-slot byte strides)."""
    for address, stride in zip(data_ptrs.tolist(), strides.tolist(), strict=True):
        for target, source in zip(tgt_loc.tolist(), src_loc.tolist(), strict=True):
            ctypes.memmove(address + target * stride, address + source * stride, stride)


def __getattr__(name: str) -> object:
    """Other CPU kernels (speculative decoding...) are imported at load but never called by
    the test tier; calling one is a loud error, never a silent no-op."""

    def not_provided(*args: object, **kwargs: object) -> None:
        raise NotImplementedError(f"sgl_kernel.{name} is not in survey-sim's test support")

    return not_provided
