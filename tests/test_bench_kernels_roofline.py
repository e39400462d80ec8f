"""Per-kernel roofline points: counted FLOPs, modelled bytes, measured times, honest plots.

CPU only and fast: no Triton interpreter anywhere (v3/v4 rows would be n/a here anyway).
"""
import copy
import csv
import json
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.__main__ import main as bench_main
from benchmarks.compare import Row
from benchmarks.kernel_points import _aggregate, _cuda_items, is_placed, profile_kernels, \
    unplaced_summary
from benchmarks.kernels import work
from benchmarks.report import KERNEL_FIELDS
from benchmarks.roofline import write_kernel_roofline, write_roofline
from benchmarks.schema import validate_kernels

CPU = torch.device("cpu")
PNG = b"\x89PNG\r\n\x1a\n"


def _by_name(records):
    return {r["name"]: r for r in records}


def test_mm_record_has_counted_flops_and_input_plus_output_bytes():
    m, k, n = 37, 53, 29
    a, b = torch.randn(m, k), torch.randn(k, n)
    records, wall_ms = profile_kernels(lambda: torch.mm(a, b), CPU)
    mm = _by_name(records)["aten::mm"]
    assert mm["calls"] == 1 and mm["time_ms"] > 0 and wall_ms >= mm["time_ms"]
    assert mm["flops"] == 2 * m * k * n and mm["flops_source"] == "profiler (aten::mm)"
    assert mm["bytes"] == 4 * (m * k + k * n + m * n)
    assert is_placed(mm)


def test_nested_and_attention_flops_and_unplaced_ops():
    """linear's FLOPs come from its nested GEMM (counted once); SDPA from torch's formula;
    ops nothing counts (exp, in-place add) keep their time but are not placed."""
    rows, inner, out = 11, 23, 19
    x, w = torch.randn(rows, inner), torch.randn(out, inner)
    bsz, heads, kv_heads, seq, dim = 2, 6, 3, 13, 8
    q = torch.randn(bsz, heads, seq, dim)
    kv = torch.randn(bsz, kv_heads, seq, dim)
    y = torch.randn(rows, out)

    def step():
        F.linear(x, w)
        F.scaled_dot_product_attention(q, kv, kv, is_causal=True, enable_gqa=True)
        torch.exp(y)
        y.add_(1.0)

    records = _by_name(profile_kernels(step, CPU)[0])
    assert not any(name in records for name in ("aten::mm", "aten::addmm", "aten::t")), \
        "nested ops must not get records of their own (their time is in the top-level op)"
    assert records["aten::linear"]["flops"] == 2 * rows * inner * out
    assert records["aten::linear"]["bytes"] == 4 * (rows * inner + out * inner + rows * out)
    sdpa = records["aten::scaled_dot_product_attention"]
    assert sdpa["flops"] == 4 * bsz * heads * seq * seq * dim     # full S x S, as documented
    assert "sdpa formula" in sdpa["flops_source"]
    for name in ("aten::exp", "aten::add_"):
        assert records[name]["flops"] is None and not is_placed(records[name])
        assert records[name]["time_ms"] > 0
    # in place: read y, read the wrapped scalar (8-byte double), write y back
    assert records["aten::add_"]["bytes"] == 4 * rows * out * 2 + 8
    n_off, share = unplaced_summary(list(records.values()))
    assert n_off == 2 and 0 < share < 1


def test_a_top_level_op_holds_the_time_of_the_ops_nested_in_it():
    """aten::linear's GEMM runs in its nested aten::addmm: the record must carry that time
    (inclusive), or the slowest op of a model would show almost no time."""
    x, w, b = torch.randn(301, 517), torch.randn(263, 517), torch.randn(263)
    records, wall_ms = profile_kernels(lambda: F.linear(x, w, b), CPU)
    linear = _by_name(records)["aten::linear"]
    assert linear["flops"] == 2 * 301 * 517 * 263
    assert linear["time_ms"] > 0.5 * wall_ms


def test_tensor_list_ops_have_unknown_bytes():
    tensors = [torch.randn(7, 3) for _ in range(3)]
    records = _by_name(profile_kernels(lambda: torch._foreach_mul_(tensors, 2.0), CPU)[0])
    assert records["aten::_foreach_mul_"]["bytes"] is None


def _event(name, device, id=0, linked=0, us=0.0, flops=0, shapes=(), dtypes=(), alloc=0):
    return SimpleNamespace(name=name, device_type=device, id=id, linked_correlation_id=linked,
                           flops=flops, input_shapes=list(shapes), input_dtypes=list(dtypes),
                           device_memory_usage=alloc, cpu_children=[],
                           time_range=SimpleNamespace(elapsed_us=lambda: us))


def test_gpu_kernels_borrow_flops_and_bytes_only_from_an_op_that_launched_one_kernel():
    """The CUDA path's linking, on stand-in profiler events (no GPU here to make real ones)."""
    cpu, cuda = torch.autograd.DeviceType.CPU, torch.autograd.DeviceType.CUDA
    m, k, n = 37, 53, 29
    events = [
        _event("aten::mm", cpu, id=7, flops=2 * m * k * n, shapes=[[m, k], [k, n]],
               dtypes=["c10::BFloat16"] * 2, alloc=2 * m * n),
        _event("cudaLaunchKernel", cpu, id=7, linked=7),     # runtime call: not an op
        _event("sm90_gemm_bf16", cuda, id=900, linked=7, us=12.0),
        _event("aten::softmax", cpu, id=8, shapes=[[m, n]], dtypes=["float"], alloc=4 * m * n),
        _event("softmax_pass1", cuda, id=901, linked=8, us=3.0),
        _event("softmax_pass2", cuda, id=902, linked=8, us=2.0),
        _event("Memset (Device)", cuda, id=903, linked=8, us=1.0),
    ]
    records = _by_name(_aggregate(_cuda_items(events)))
    assert set(records) == {"sm90_gemm_bf16", "softmax_pass1", "softmax_pass2"}   # no memset
    gemm = records["sm90_gemm_bf16"]
    assert gemm["flops"] == 2 * m * k * n and gemm["time_ms"] == pytest.approx(0.012)
    assert gemm["bytes"] == 2 * (m * k + k * n + m * n)
    for name in ("softmax_pass1", "softmax_pass2"):     # two kernels, one op: no split known
        assert records[name]["flops"] is None and records[name]["bytes"] is None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "run"
    rc = bench_main(["run", "--versions", "v1,v2,v4", "--presets", "chip16", "--modes",
                     "train,prefill,decode", "--steps", "2", "--warmup", "1", "--device",
                     "cpu", "--no-progress", "--out", str(out)])
    assert rc == 0
    return out, json.loads((out / "results.json").read_text())


_GEMM_SOURCE = re.compile(r"^profiler \(aten::(mm|bmm|addmm|baddbmm)\)$")


def test_harness_rows_carry_kernel_records_that_agree_with_the_flop_counter(quick_run):
    out, data = quick_run
    rows = {(r["version"], r["mode"]): r for r in data["rows"]}
    for mode in ("train", "prefill", "decode"):
        for version in ("v1", "v2"):
            row = rows[(version, mode)]
            validate_kernels(row["kernels"])
            assert row["kernel_step_ms"] > 0
            assert sum(k["time_ms"] for k in row["kernels"]) > 0
            assert any(is_placed(k) for k in row["kernels"])
        assert rows[("v4", mode)]["status"] == "n/a" and rows[("v4", mode)]["kernels"] == []
        # Two independent counters: the profiler's per-GEMM counts in v1's records add up
        # to FlopCounterMode's whole-step count (v1's attention is explicit matmuls).
        v1 = rows[("v1", mode)]
        gemm = sum(k["flops"] for k in v1["kernels"]
                   if k["flops"] and all(_GEMM_SOURCE.match(s)
                                         for s in k["flops_source"].split("; ")))
        assert gemm == v1["workload_flops"]
    # v2 inference: GEMMs plus SDPA's formula count the same work as v1's matmuls.
    for mode in ("prefill", "decode"):
        v2 = rows[("v2", mode)]
        gemm_and_sdpa = sum(k["flops"] for k in v2["kernels"] if k["flops"] and all(
            _GEMM_SOURCE.match(s) or s.startswith("sdpa formula")
            for s in k["flops_source"].split("; ")))
        assert gemm_and_sdpa == v2["workload_flops"]


def test_kernels_csv_is_well_formed(quick_run):
    out, data = quick_run
    with (out / "kernels.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == KERNEL_FIELDS
        lines = list(reader)
    assert len(lines) == sum(len(r["kernels"]) for r in data["rows"])
    for line in lines:
        assert float(line["time_ms_profiled"]) >= 0 and int(line["calls"]) >= 1
        assert line["on_roofline"] in ("True", "False")
        if line["on_roofline"] == "True":
            flops, nbytes = int(line["flops"]), int(line["bytes_min_traffic_model"])
            assert float(line["flop_per_byte"]) == pytest.approx(flops / nbytes, rel=1e-5)
            assert float(line["flops_per_s"]) == pytest.approx(
                flops / (float(line["time_ms_profiled"]) / 1e3), rel=1e-4)
        else:
            assert line["flop_per_byte"] == "" and line["flops_per_s"] == ""
    # the per-row numbers do not leak into the one-line-per-row results.csv
    with (out / "results.csv").open() as f:
        assert "kernels" not in next(csv.reader(f))


def test_kernel_roofline_png_and_replot_of_an_old_results_json(quick_run, tmp_path):
    out, data = quick_run
    data = copy.deepcopy(data)
    for png in ("roofline.png", "roofline_kernels.png"):
        assert (out / png).read_bytes()[:8] == PNG
    # A results.json written before kernel records existed: no kernels field at all.
    old = tmp_path / "old"
    old.mkdir()
    for row in data["rows"]:
        row.pop("kernels")
        row.pop("kernel_step_ms")
    (old / "results.json").write_text(json.dumps(data))
    assert bench_main(["plot", str(old)]) == 0
    assert (old / "roofline.png").read_bytes()[:8] == PNG
    assert not (old / "roofline_kernels.png").exists()   # nothing to place, nothing drawn


def test_replot_rejects_a_malformed_kernel_record(quick_run, tmp_path):
    data = copy.deepcopy(quick_run[1])
    ok = next(r for r in data["rows"] if r["kernels"])
    ok["kernels"][0]["bytes"] = -1
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="negative bytes"):
        bench_main(["plot", str(tmp_path)])


@pytest.mark.parametrize("bad, message", [
    ({"calls": 0}, "calls >= 1"),
    ({"flops": 10, "flops_source": None}, "both set or both null"),
    ({"time_ms": "1"}, "time_ms"),
    ({"flops": True}, "flops"),
])
def test_validate_kernels_names_the_problem(bad, message):
    good = {"name": "aten::mm", "calls": 2, "time_ms": 0.5, "flops": 10,
            "flops_source": "profiler (aten::mm)", "bytes": 40}
    validate_kernels([good])
    with pytest.raises(ValueError, match=message):
        validate_kernels([dict(good, **bad)])


def _row(version, extra, kernels, **kw):
    return Row(version, "chip16", "prefill", "ok", extra=extra, kernels=kernels,
               kernel_step_ms=1.0, batch_size=1, seq_len=16, median_ms=1.0,
               workload_flops=1000, achieved_flops_per_s=1e6, **kw)


def test_interpreter_rows_are_not_put_on_either_roofline(tmp_path):
    machine = {"device_name": "test", "ceilings": {
        "matmul_flops_per_s": 1e11, "copy_bytes_per_s": 5e10, "matmul_dtype": "float32"}}
    placed = [{"name": "aten::mm", "calls": 1, "time_ms": 0.2, "flops": 2000,
               "flops_source": "profiler (aten::mm)", "bytes": 400}]
    interp = _row("v3", {"triton_mode": "interpreter"}, placed)
    assert write_kernel_roofline([interp], machine, tmp_path / "k.png") is None
    assert write_roofline([interp], machine, {}, tmp_path / "r.png") is None
    assert write_kernel_roofline([_row("v2", {}, placed)], machine, tmp_path / "k.png")
    assert (tmp_path / "k.png").read_bytes()[:8] == PNG


def test_kernel_bench_counts_by_hand():
    """Analytic bytes/FLOPs of the GPU kernel benches, at odd shapes, against numbers worked
    out by hand (and, for the attention matmuls, against torch's FlopCounterMode)."""
    # rms_norm 123 x 423, bf16: n = 52029 elements
    assert work.rms_norm(123, 423, 2) == work.Work(208116, 208116, 520290, 676377)
    # swiglu 37 x 61, fp32: n = 2257; 3n*4, 5n, 8n*4, 16n
    assert work.swiglu(37, 61, 4) == work.Work(27084, 11285, 72224, 36112)
    # rope B3 S5 H6/2 D10, bf16: n = 3*5*8*10 = 1200
    assert work.rope(3, 5, 6, 2, 10, 2) == work.Work(4800, 3600, 9600, 7200)
    # cross-entropy 13 x 101, fp32: n = 1313
    assert work.cross_entropy(13, 101, 4) == work.Work(15756, 5252, 26260, 9191)
    # flash attention B3 S17 H6/2 D24, bf16: fwd 2*3*6*17*17*24 = 249696 FLOPs;
    # q = 3*17*6*24*2 = 14688 B, kv = 4896 B; fwd 2q+2kv, bwd 4q+4kv more
    fa = work.flash_attention(3, 17, 6, 2, 24, 2)
    assert fa == work.Work(39168, 249696, 117504, 873936)
    # decode attention B5 H6/3 D16 T37, fp16: K,V 2*5*3*37*16*2 = 35520 B, q+o 1920 B
    assert work.decode_attention(5, 6, 3, 16, 37, 2) == work.Work(37440, 71040)

    # The matmuls of non-causal attention, counted by torch: twice the causal forward.
    q, k = torch.randn(3, 6, 17, 24), torch.randn(3, 6, 17, 24)
    with FlopCounterMode(display=False) as counter:
        torch.softmax(q @ k.transpose(-1, -2), -1) @ k
    assert counter.get_total_flops() == 2 * fa.fwd_flops
    q1, kc = torch.randn(5, 6, 1, 16), torch.randn(5, 6, 37, 16)
    with FlopCounterMode(display=False) as counter:
        torch.softmax(q1 @ kc.transpose(-1, -2), -1) @ kc
    assert counter.get_total_flops() == work.decode_attention(5, 6, 3, 16, 37, 2).fwd_flops


def test_kernel_bench_rows_record_bytes_flops_and_both_rates(monkeypatch, tmp_path, capsys):
    """The GPU benches' row plumbing, with a stand-in timer (the benches refuse without a GPU)."""
    import benchmarks.kernels as kb
    monkeypatch.setattr(kb, "bench_ms", lambda fn: 0.25)
    count, rows = work.swiglu(37, 61, 2), []
    kb.run_impls({"eager": lambda: None, "compile": None}, "37x61", count,
                 lambda fn: fn, lambda fn: fn, rows)
    assert [(r["impl"], r["pass"]) for r in rows] == [("eager", "fwd"), ("eager", "fwd+bwd")]
    fwd, step = rows
    assert (fwd["bytes"], fwd["flops"]) == (count.fwd_bytes, count.fwd_flops)
    assert (step["bytes"], step["flops"]) == (count.step_bytes, count.step_flops)
    assert fwd["GBps"] == pytest.approx(count.fwd_bytes / 0.25e-3 / 1e9)
    assert step["TFLOPs"] == pytest.approx(count.step_flops / 0.25e-3 / 1e12)
    assert fwd["flop_per_byte"] == pytest.approx(count.fwd_flops / count.fwd_bytes)
    ceil = {"copy_GBps": 100.0, "bf16_matmul_TFLOPs": 50.0, "device_name": "stand-in"}
    kb.report("swiglu", rows, ceil, str(tmp_path / "rows.json"))
    saved = json.loads((tmp_path / "rows.json").read_text())
    assert saved["rows"] == rows and "GB/s" in capsys.readouterr().out
