"""Data-parallel and sharded training of an unchanged model with ``torch.distributed``.

Parallelism is applied from outside, torchtitan-style: a version builds its model as it
always does, then ``wrap_model`` hands it to an engine of PyTorch itself:

* ``ddp``: ``DistributedDataParallel``: a full replica per rank, gradients all-reduced.
* ``fsdp``: FSDP2 ``fully_shard`` on every decoder layer and on the root (embedding, final
  norm, head): parameters, gradients and optimizer state sharded across ranks; a layer's
  parameters are all-gathered just before its forward/backward and freed after.

Processes are started by ``torchrun`` (which also spans machines through its rendezvous);
this module reads the environment it sets (RANK, WORLD_SIZE, LOCAL_RANK). The backend is
``nccl`` on GPUs (ROCm's RCCL answers to the same name) and ``gloo`` on CPU.

Why the Triton versions shard without change: FSDP2 swaps a module's sharded DTensor
parameters for plain, unsharded tensors inside the wrapped module's forward (and back
after), so a kernel's ``autograd.Function`` sees ordinary tensors. The wrapped unit must
therefore contain every parameter its forward reads: that is why the unit is the whole
decoder layer (version 4 reads all of a layer's weights in one fused sub-block).
"""
from __future__ import annotations

import contextlib
import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .data import MarkovCorpus
from .errors import UserError

ENGINES = ("none", "ddp", "fsdp")


class ParallelError(UserError):
    """A request the parallel engines cannot serve; the message is one line for the user."""


@dataclass(frozen=True)
class ParallelPlan:
    """How to parallelize one training run.

    engine: one of ``ENGINES``.
    mixed_precision: FSDP2 ``MixedPrecisionPolicy``: None (fp32 everywhere) or "bf16"
        (bf16 parameters in compute, gradients reduced in fp32). fsdp only.
    activation_checkpointing: recompute each decoder layer's activations in backward.
    compile_layers: ``torch.compile`` each decoder layer (not the whole model).
    timeout_s: process-group timeout; a rank stuck in a collective raises after it.
    """

    engine: str = "none"
    mixed_precision: str | None = None
    activation_checkpointing: bool = False
    compile_layers: bool = False
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ParallelError(f"--parallel {self.engine!r} is not an engine here; choose one "
                                f"of {', '.join(ENGINES)}")
        if self.mixed_precision not in (None, "bf16"):
            raise ParallelError(f"mixed precision {self.mixed_precision!r}: expected bf16 or none")
        if self.mixed_precision and self.engine != "fsdp":
            raise ParallelError("--mixed-precision bf16 is FSDP2's MixedPrecisionPolicy; "
                                "use it with --parallel fsdp")
        if not self.timeout_s > 0:
            raise ParallelError(f"--dist-timeout must be positive, got {self.timeout_s}")


@dataclass(frozen=True)
class RankEnv:
    """Where this process stands: rank, world size, its device and the backend in use."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None       # None: no process group (one process, engine none)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world_size() -> int:
    """WORLD_SIZE set by torchrun, 1 when started as a plain process."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def backend_for(device: torch.device) -> str:
    """nccl on NVIDIA and AMD GPUs (torch maps it to RCCL on ROCm), gloo on CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_distributed(plan: ParallelPlan, device: torch.device) -> RankEnv:
    """Join the process group torchrun prepared (or run alone when engine is none).

    ``device``: the requested device type; on GPUs each rank takes ``cuda:LOCAL_RANK``.
    """
    world = launched_world_size()
    if plan.engine == "none":
        if world > 1:
            raise ParallelError(f"started by torchrun with {world} processes but --parallel "
                                "none; pass --parallel ddp or fsdp")
        return RankEnv(0, 1, 0, device, None)
    if "RANK" not in os.environ:   # a plain `python -m ...`: a world of one, still an engine
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=os.environ.get("MASTER_PORT", str(_free_port())))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = backend_for(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=plan.timeout_s),
                            device_id=device if device.type == "cuda" else None)
    return RankEnv(dist.get_rank(), dist.get_world_size(), local_rank, device, backend)


@contextlib.contextmanager
def failures_named():
    """Print ``error: rank R of W failed: <exception>`` on one line before an exception leaves
    this rank, so the log of a job says which rank broke it and why; then re-raise (torchrun
    sees the non-zero exit and stops the other ranks)."""
    try:
        yield
    except UserError:      # a refused request: the caller prints it as the one line
        raise
    except Exception as exc:
        rank = dist.get_rank() if dist.is_initialized() else os.environ.get("RANK", "0")
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: rank {rank} of {launched_world_size()} failed: "
              f"{type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        raise


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_batch_size(global_batch: int, world_size: int) -> int:
    """Rows per rank; raises ParallelError when the world size does not divide the batch."""
    if global_batch % world_size:
        raise ParallelError(f"world size {world_size} does not divide the global batch "
                            f"{global_batch}; use a --batch-size that is a multiple of "
                            f"{world_size}")
    return global_batch // world_size


class ShardedBatches:
    """This rank's rows of each step's global batch, the same global batch at any world size.

    Row ``r`` of step ``s`` is drawn from the corpus by a generator seeded with
    ``(seed, s, r)`` alone, so a rank draws only its own rows and the union over ranks
    does not depend on how many ranks there are. ``batch(step)`` -> (B/world, seq) int64.
    """

    def __init__(self, corpus: MarkovCorpus, global_batch: int, seq_len: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.corpus, self.seq_len, self.seed = corpus, seq_len, seed
        per_rank = local_batch_size(global_batch, world_size)
        self.rows = range(rank * per_rank, (rank + 1) * per_rank)

    def _row(self, step: int, row: int) -> torch.Tensor:
        # Distinct (seed, step, row) -> distinct generator seeds (rows < 2**20, steps < 2**20).
        g = torch.Generator().manual_seed(((self.seed * 2**20 + step) * 2**20) + row)
        return self.corpus.sample(1, self.seq_len, generator=g)

    def batch(self, step: int) -> torch.Tensor:
        return torch.cat([self._row(step, r) for r in self.rows])


def cannot_shard(model: torch.nn.Module) -> str | None:
    """Why FSDP cannot shard ``model`` per decoder layer, or None when it can."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        return (f"{type(model).__name__} has no model.layers of decoder layers to shard one "
                "by one")
    if getattr(model, "_compiled_call_impl", None) is not None:
        return ("the model is torch.compile'd as a whole (v2 --compile); FSDP2 shards the "
                "layers of an uncompiled model: drop --compile and use --compile-layers")
    return None


def wrap_model(model: torch.nn.Module, plan: ParallelPlan, env: RankEnv) -> torch.nn.Module:
    """Apply activation checkpointing, per-layer compile and the engine, in torchtitan's order.

    ``model`` is on ``env.device`` with its weights loaded. Returns the module to train:
    the model itself (none, fsdp: sharded in place) or its DDP wrapper.
    """
    if plan.engine == "fsdp":
        reason = cannot_shard(model)
        if reason:
            raise ParallelError(f"--parallel fsdp: {reason}")
    layers = model.model.layers
    if plan.activation_checkpointing:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
            checkpoint_wrapper)
        for i, layer in enumerate(layers):
            layers[i] = checkpoint_wrapper(layer)
    if plan.compile_layers:
        for layer in layers:
            layer.compile()
    if plan.engine == "ddp":
        from torch.nn.parallel import DistributedDataParallel
        ids = [env.device.index] if env.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if plan.engine == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
        policy = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if plan.mixed_precision == "bf16" else None,
            reduce_dtype=torch.float32)
        for layer in layers:
            fully_shard(layer, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
    return model


def describe_sharding(plan: ParallelPlan, world_size: int) -> str:
    """One line for the result JSON: what each rank holds."""
    extras = [name for flag, name in ((plan.activation_checkpointing, "activation checkpointing"),
                                      (plan.compile_layers, "torch.compile per layer"))
              if flag]
    if plan.engine == "ddp":
        text = f"DDP: full replica on each of {world_size} ranks, gradients all-reduced"
    elif plan.engine == "fsdp":
        mp = ("bf16 params, fp32 reduce" if plan.mixed_precision == "bf16"
              else "fp32 params and reduce")
        text = (f"FSDP2 fully_shard per decoder layer + root over {world_size} ranks "
                f"(params, grads, optimizer state 1/{world_size} each; {mp})")
    else:
        text = "none: one process holds everything"
    return text + "".join(f"; {e}" for e in extras)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of ``values`` (any shape, float) over ranks; identity alone."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / dist.get_world_size()


def gather_objects(value) -> list:
    """``value`` from every rank, in rank order (a list of one when alone)."""
    if not dist.is_initialized():
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out
