"""The speed table: ms/step with its range, img/s, GFLOP/s and % of the machine's peak, from records."""
from bench.report.speed import render_speed
from bench.speed.overhead import overhead_record

PEAK = {"kernels": {"torch.mm fp32": {"precision": "fp32", "gflops": 200.0, "library": "MKL sgemm"},
                    "torch.mm bf16": {"precision": "bf16", "gflops": 800.0, "library": "oneDNN bf16"}},
        "theoretical": {"cores": 2, "clock_mhz": 2500.0,
                        "fp32": {"gflops": 160.0, "flop_per_cycle": 32, "assumption": "2 FMA pipes"},
                        "bf16": {"gflops": None, "why": "no bf16 dot-product instructions"}}}


def _record(precision, native_ms, flops=4e9, error=None):
    spec = {"backend": "x", "model": "resnet18", "image_size": 32, "strategy": "full", "batch_size": 16,
            "steps": 3, "warmup": 0, "classes": 5, "lr": 0.01, "mode": "graph", "device": "cpu",
            "precision": precision, "rounds": 2, "design": "interleaved"}
    env = {"peak": PEAK, "cpu": "AMD EPYC"}
    if error:
        results = {loop: [{"error": error}] * 2 for loop in ("native", "harness")}
    else:
        results = {loop: [{"steps_ms": [ms] * 3, "stats": {"median_ms": ms}, "compile_ms": 1.0,
                           "contention": {}, "environment": env} for ms in (native_ms, native_ms * 1.1)]
                   for loop in ("native", "harness")}
    rec = overhead_record(spec, results, {})
    rec["flops"] = {"per_step": flops}
    return rec


def test_rates_and_shares_of_peak_come_from_the_records():
    table = render_speed([_record("fp32", 20.0), _record("bf16", 10.0)])
    fp32 = next(line for line in table.splitlines() if " fp32 " in line and "resnet18" in line)
    # median of the rounds' medians 21 ms: 4 GFLOP / 21 ms = 190 GFLOP/s = 95% of 200, 119% of 160
    assert "21.0 [20.0–22.0]" in fp32 and " 762 " in fp32 and " 190 " in fp32 and "95%" in fp32 and "119%" in fp32
    bf16 = next(line for line in table.splitlines() if " bf16 " in line and "resnet18" in line)
    assert "48%" in bf16 and "2.00" in bf16  # 381 of 800 GFLOP/s; fp32 / bf16 step time
    assert "measured peak, fp32: 200 GFLOP/s, torch.mm fp32 (MKL sgemm)" in table
    assert "no bf16 dot-product instructions" in table
    assert "beats this theoretical figure (200 > 160)" in table  # a clock read below the turbo one, said


def test_a_refused_precision_is_a_row_that_says_why():
    refused = _record("fp16", None, error="exit 2: cannot train in fp16")
    table = render_speed([_record("fp32", 20.0), refused])
    assert "refused: exit 2: cannot train in fp16" in table
    # every round refused, yet the record names the machine it was refused on
    from bench.measure.environment import cpu_model
    assert refused["environment"]["cpu"] == cpu_model() and refused["environment"]["frameworks"] == {}


def test_profile_table_shows_top_operators_their_share_and_what_was_attributed():
    from bench.report.speed import render_profiles
    spec = {"backend": "x", "model": "resnet18", "image_size": 112, "strategy": "full", "precision": "fp32",
            "steps": 2}
    rec = {"kind": "profile", "spec": spec, "wall_ms": 400.0,
           "ops_ms": {"conv": 240.0, "bn": 60.0, "relu": 20.0, "add": 10.0, "pool": 6.0, "mm": 2.0, "misc": 2.0}}
    table = render_profiles([rec, {"kind": "profile", "spec": spec | {"backend": "y"}, "error": "no profiler"},
                             {"kind": "profile", "spec": "garbage"}], top=2)
    assert "170.0 ms of operators per step, attributed 85% of 200.0 ms wall per step" in table
    assert "conv" in table and "71%" in table and "(5 more)" in table
    assert "y resnet18 112 px, full, fp32: not profiled (no profiler)" in table
    assert "a malformed profile record" in table


def test_a_profile_taken_under_a_setting_says_so():
    from bench.report.speed import render_profiles
    spec = {"backend": "mxnet", "model": "resnet18", "image_size": 112, "strategy": "full", "steps": 1}
    rec = {"kind": "profile", "spec": spec, "wall_ms": 10.0, "ops_ms": {"conv": 5.0},
           "settings": {"MXNET_EXEC_BULK_EXEC_TRAIN": "0"}}
    assert "mxnet resnet18 112 px, full, fp32 (MXNET_EXEC_BULK_EXEC_TRAIN=0):" in render_profiles([rec])


def test_records_of_two_machines_never_pool_and_each_gets_its_own_table():
    from bench.report.speed import render_overhead
    epyc, xeon = _record("fp32", 20.0), _record("fp32", 40.0)
    epyc["environment"] |= {"cpu": "AMD EPYC", "cpu_flags": ["avx2"], "cpu_count": 2}
    xeon["environment"] |= {"cpu": "Intel Xeon", "cpu_flags": ["avx512f"], "cpu_count": 2,
                            "git": {"commit": "abcdef0123", "dirty": False}}
    speed = render_speed([epyc, xeon], "markdown")
    assert "### Measured on AMD EPYC (avx2, 2 cores, no gpu)" in speed
    assert "### Measured on Intel Xeon (avx512f, 2 cores, no gpu)" in speed
    epyc_part, xeon_part = speed.split("### Measured on Intel Xeon")
    assert "21.0 [20.0–22.0]" in epyc_part and "42.0 [40.0–44.0]" in xeon_part  # not one pooled row
    assert "at commit abcdef0" in xeon_part and "commits unknown" not in xeon_part
    overhead = render_overhead([epyc, xeon], "markdown")
    assert overhead.count("### Measured on") == 2
    assert overhead.count("1 of 1 measured combinations at or below") == 2


def test_every_row_of_a_machine_reads_its_newest_peak_measurement():
    """overhead.md and speed.md read one peak per machine: the newest measurement, never an older one
    a record kept (an old record's peak computed under a wrong rule stays unread)."""
    old, new = _record("fp32", 20.0), _record("fp32", 40.0)
    new["spec"]["image_size"] = 112
    stale = {"kernels": {"torch.mm fp32": {"precision": "fp32", "gflops": 415.0, "library": "old"}},
             "theoretical": {"cores": 2, "clock_mhz": 2500.0,
                             "fp32": {"gflops": 80.0, "flop_per_cycle": 16, "assumption": "a wrong rule"}},
             "measured_at": "2026-12-05T15:00:00Z"}
    old["environment"] = old["environment"] | {"peak": stale}
    new["environment"] = new["environment"] | {"peak": PEAK | {"measured_at": "2026-12-05T22:00:00Z"}}
    table = render_speed([old, new])
    assert "measured peak, fp32: 200 GFLOP/s" in table and "415" not in table and "a wrong rule" not in table
    assert "measured 2026-12-05T22:00:00Z" in table
    rows = [line for line in table.splitlines() if " fp32 " in line and "resnet18" in line]
    assert len(rows) == 2 and all("%" in row for row in rows)


def test_records_of_the_older_shared_reference_are_rows_of_their_own():
    """A ratio measured against a reference loop that reused the harness's plan application is not the
    ratio against the independent one: the two never pool, the column says which, and a note says why."""
    from bench.report.speed import render_overhead
    old, new = _record("fp32", 20.0), _record("fp32", 30.0)
    old["spec"].pop("reference", None)
    new["spec"]["reference"] = "independent"
    table = render_overhead([old, new])
    rows = [line for line in table.splitlines() if "resnet18" in line]
    assert len(rows) == 2 and any("independent" in r for r in rows) and any("shared the harness" in r for r in rows)
    assert "a cost they share is invisible in their ratio" in table
    only_new = render_overhead([new])
    assert "reference" not in only_new.splitlines()[0] and "independent, interleaved: 1 of 1" in only_new
