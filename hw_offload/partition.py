"""Find the decoder blocks in a Dynamo FX graph and decide which can run on the accelerator.

Knows torch.fx, nothing about instructions. Three checks, each giving a reason when it fails:

1. Grouping: every compute node is assigned to the decoder layer in its ``nn_module_stack``
   (the outermost module whose path ends in ``layers.<i>``).
2. Capability: ``BlockOperatorSupport`` accepts the ops of a Llama decoder block;
   ``CapabilityBasedPartitioner`` must then find the whole group as ONE partition (an
   unsupported op inside the block splits it or leaves holes, so the block stays on the host).
3. Structure: the seven projections and two norms are there, with weights, one output leaves
   the block, and the attention mask tells the start position (see ``BlockGroup``).

A fourth check, that the block computes what a v1 DecoderLayer computes, needs numbers and
is done at calibration (calibrate.py).
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.fx import GraphModule, Node
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupport

_LAYER_RE = re.compile(r"layers\.(\d+)$")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NORMS = ("input_layernorm", "post_attention_layernorm")

# The ops of a Llama decoder block as Dynamo records them (functions and tensor methods).
SUPPORTED_FUNCTIONS = {
    F.linear, torch._C._nn.linear, F.silu, torch.rsqrt, torch.cat, torch.softmax, torch.arange,
    torch.matmul, operator.add, operator.mul, operator.neg, operator.truediv, operator.getitem,
    operator.setitem, operator.gt, operator.sub, operator.matmul,
}
SUPPORTED_METHODS = {"float", "pow", "mean", "to", "view", "transpose", "chunk", "repeat_interleave",
                     "masked_fill", "reshape", "contiguous", "softmax", "type_as"}


def _target_name(node: Node) -> str:
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def module_path(node: Node) -> str | None:
    """Innermost module path of ``node`` (``L['self'].model.layers.0.self_attn.q_proj``)."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    return list(stack.values())[-1][0]


def layer_of(node: Node) -> int | None:
    """Index of the decoder layer a compute node came from, or None."""
    stack = node.meta.get("nn_module_stack") or {}
    for path, _ in stack.values():
        m = _LAYER_RE.search(path)
        if m:
            return int(m.group(1))
    return None


class BlockOperatorSupport(OperatorSupport):
    """Supports the ops of a Llama decoder block, for the nodes of one layer only (so that the
    partitioner never merges two layers into one partition)."""

    def __init__(self, layer: int):
        super().__init__()
        self.layer = layer

    def is_node_supported(self, submodules, node: Node) -> bool:
        if node.op not in ("call_function", "call_method") or layer_of(node) != self.layer:
            return False
        if node.op == "call_method":
            return node.target in SUPPORTED_METHODS
        return node.target in SUPPORTED_FUNCTIONS


@dataclass
class BlockGroup:
    """One decoder layer's nodes in the graph, and what the accelerator call needs from them."""

    layer: int
    nodes: list[Node]
    reason: str | None = None          # why it stays on the host (None: offloadable)
    x: Node | None = None              # the block input (hidden state)
    y: Node | None = None              # the block output
    past: Node | int = 0               # start position (a SymInt node in decode graphs)
    params: dict[str, Node] = field(default_factory=dict)   # "self_attn.q_proj.weight" -> placeholder
    head_dim: int = 0
    eps: float = 1e-6
    uses_cache: bool = False


def find_blocks(gm: GraphModule) -> list[BlockGroup]:
    """Group the graph's compute nodes by decoder layer and check each group."""
    groups: dict[int, list[Node]] = {}
    for node in gm.graph.nodes:
        if node.op in ("call_function", "call_method", "call_module"):
            layer = layer_of(node)
            if layer is not None:
                groups.setdefault(layer, []).append(node)
    return [_check(gm, layer, nodes) for layer, nodes in sorted(groups.items())]


def _check(gm: GraphModule, layer: int, nodes: list[Node]) -> BlockGroup:
    g = BlockGroup(layer, nodes)
    support = BlockOperatorSupport(layer)
    bad = sorted({f"{_target_name(n)} ({module_path(n)})" for n in nodes
                  if not support.is_node_supported({}, n)})
    if bad:
        g.reason = "unsupported op(s): " + ", ".join(bad)
        return g
    parts = CapabilityBasedPartitioner(gm, support, allows_single_node_partition=True).propose_partitions()
    if len(parts) != 1 or set(parts[0].nodes) != set(nodes):
        g.reason = f"block splits into {len(parts)} partitions (not one convex subgraph)"
        return g
    inside = set(nodes)
    # Scalar (SymInt) arithmetic such as past + seq may be shared with later layers; it stays
    # in the graph. Exactly one tensor may leave the block.
    outputs = [n for n in nodes if any(u not in inside for u in n.users)
               and isinstance(n.meta.get("example_value"), torch.Tensor)]
    if len(outputs) != 1:
        g.reason = f"{len(outputs)} tensors leave the block (expected one hidden state)"
        return g
    g.y = outputs[0]
    # weights: the placeholder argument of each projection's linear and of each norm's multiply
    for n in nodes:
        path = module_path(n) or ""
        leaf = path.rsplit(".", 1)[-1]
        ph = [a for a in n.args if isinstance(a, Node) and a.op == "placeholder"]
        if leaf in PROJECTIONS and _target_name(n) == "linear" and ph:
            owner = "mlp" if leaf in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            g.params[f"{owner}.{leaf}.weight"] = ph[-1]
        if leaf in NORMS and ph:
            g.params[f"{leaf}.weight"] = ph[-1]
        if leaf in NORMS and _target_name(n) == "add" and isinstance(n.args[1], float):
            g.eps = n.args[1]
        if _target_name(n) == "setitem":
            g.uses_cache = True
        if leaf == "q_proj" and _target_name(n) == "linear":
            view = next((u for u in n.users if u.target == "view"), None)
            if view is not None and isinstance(view.args[-1], int):
                g.head_dim = view.args[-1]
        if leaf == "input_layernorm":
            for a in n.all_input_nodes:
                if a not in inside and not _is_param(a):
                    g.x = a
        if _target_name(n) == "arange" and len(n.args) >= 2:
            g.past = n.args[0]   # q_pos = arange(past, past + seq): the start position
    missing = [f"{o}.{p}.weight" for o, ps in (("self_attn", PROJECTIONS[:4]), ("mlp", PROJECTIONS[4:]))
               for p in ps if f"{o}.{p}.weight" not in g.params]
    missing += [f"{nm}.weight" for nm in NORMS if f"{nm}.weight" not in g.params]
    if missing:
        g.reason = "not a Llama decoder block: no weight for " + ", ".join(missing)
    elif g.x is None:
        g.reason = "could not find the block input feeding input_layernorm"
    elif not g.head_dim:
        g.reason = "could not read head_dim from the q_proj view"
    return g


def _is_param(node: Node) -> bool:
    ex = node.meta.get("example_value")
    return node.op == "placeholder" and isinstance(ex, torch.nn.Parameter) or \
        node.op == "placeholder" and "_parameters_" in node.name


def describe(groups: list[BlockGroup]) -> str:
    """One line per block: offloaded, or on the host and why."""
    return "\n".join(f"  layer {g.layer}: " + ("offloaded to the accelerator" if g.reason is None
                                                 else f"on the host: {g.reason}") for g in groups)
