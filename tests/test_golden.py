"""Golden vectors (krad_ref.crossval.format / tolerance, proofs_check.golden): format, determinism, tolerances."""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from krad_ref.crossval import format as fmt
from krad_ref.crossval import tolerance as T

SHIPPED = fmt.shipped_paths()
CASES = {p.stem: fmt.load(p) for p in SHIPPED}


def _ids():
    return sorted(CASES)


def test_shipped_set_is_small_and_complete():
    from proofs_check import golden

    stems = {fmt.file_stem(c) for c in golden.SHIPPED}
    assert {p.stem for p in SHIPPED} == stems
    assert {p.stem for p in fmt.GOLDEN_DIR.glob("*.npz")} == stems
    assert sum(p.stat().st_size for p in fmt.GOLDEN_DIR.iterdir()) < 2 * 1024 * 1024
    algs = {c.algorithm for c in CASES.values()}
    assert {"kradagrad_star", "kradagrad", "shampoo", "adagrad_full"} <= algs
    assert any(len(c.shape) == 3 for c in CASES.values())
    assert any(len(c.shape) == 2 and c.shape[0] != c.shape[1] for c in CASES.values())


def test_regeneration_is_byte_identical(tmp_path):
    from proofs_check import golden

    written = golden.generate_shipped(tmp_path)
    assert len(written) == len(SHIPPED)
    for p in fmt.GOLDEN_DIR.iterdir():
        assert (tmp_path / p.name).read_bytes() == p.read_bytes(), f"{p.name} differs from its regeneration"


def test_fields_added_after_v1_are_written_only_when_set():
    """shampoo.Config.rcond (algorithm.OMIT_WHEN_DEFAULT): absent at its default, so v1 vectors keep their bytes
    (test_regeneration_is_byte_identical), present when set, and make_config restores either exactly."""
    from krad_ref import shampoo

    plain = fmt.config_fields(shampoo.Config())
    assert "rcond" not in plain and "eps_mode" in plain  # every v1 field is still written, defaults included
    assert fmt.make_config("shampoo", plain) == shampoo.Config()
    cfg = shampoo.Config(eps=0.0, eps_mode="pinv", rcond=0.125)
    fields = fmt.config_fields(cfg)
    assert fields["rcond"] == 0.125
    assert fmt.make_config("shampoo", json.loads(json.dumps(fields))) == cfg


def test_pow2_up_snaps_float_noise_around_a_power_of_two():
    """Tolerances c n u k of condition 1 are exact powers of two; their float evaluation lands a few ulps off.
    Anything within 1e-12 relative (1000x LAPACK's O(n u) differences, 1000x below POW2_SLACK) of 2^k rounds to
    2^k; 2^k (1 + 1e-6) is a genuinely larger value and rounds to 2^(k+1)."""
    from proofs_check import golden

    for k in (-60, -16, -1, 0, 3, 40):
        p = 2.0**k
        for rel in (0.0, 2.0**-52, 4e-16, 7e-16, 1e-12, -2.0**-53, -1e-12):
            assert golden.pow2_up(p * (1 + rel)) == p, (k, rel)
        assert golden.pow2_up(p * (1 + 1e-6)) == 2 * p
        assert golden.pow2_up(p * 0.75) == p and golden.pow2_up(p * 0.5) == p / 2
    assert golden.pow2_up(0.0) == 0.0 and golden.pow2_up(math.inf) == math.inf


def test_regeneration_does_not_depend_on_the_last_bits_of_the_tolerance_model(tmp_path, monkeypatch):
    """The one float (NumPy/LAPACK) computation in a golden file is the tolerance model; every other value comes
    from the mp twins. Perturbing each model tolerance by up to 1e-12 relative (1000x the differences between
    NumPy/LAPACK builds) must leave the bytes of the shipped files unchanged. The two cases are those whose
    tolerances sit on a power of two (condition exactly 1)."""
    from proofs_check import golden

    real = golden.tolmod.step_tolerances
    rng = np.random.default_rng(7)

    def noisy(*args, **kw):
        def jitter(v):
            if v is None:
                return None
            if isinstance(v, tuple):
                return tuple(jitter(x) for x in v)
            return v * (1 + rng.uniform(-1e-12, 1e-12))
        return [{q: jitter(v) for q, v in step.items()} for step in real(*args, **kw)]

    monkeypatch.setattr(golden.tolmod, "step_tolerances", noisy)
    for cid in ("kradagrad/damped_decay_4x3", "kradagrad_star/ill_5x4"):
        jp, npp = fmt.dump(golden.build_case(golden.CASES[cid]), tmp_path)
        assert jp.read_bytes() == (fmt.GOLDEN_DIR / jp.name).read_bytes(), cid
        assert npp.read_bytes() == (fmt.GOLDEN_DIR / npp.name).read_bytes(), cid


@pytest.mark.parametrize("arr", [np.arange(12.0).reshape(4, 3), np.zeros((0,)), np.array(2.5),
                                 np.linspace(-1, 1, 24).reshape(2, 3, 4), np.frombuffer(b"{}", dtype=np.uint8)])
def test_npy_bytes_are_read_back_bit_exactly_by_numpy(arr):
    data = fmt.npy_bytes(arr)
    assert data[:8] == b"\x93NUMPY\x01\x00" and (10 + int.from_bytes(data[8:10], "little")) % 64 == 0
    back = np.load(io.BytesIO(data), allow_pickle=False)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    assert back.tobytes() == arr.tobytes()
    with pytest.raises(TypeError, match="arr"):
        fmt.npy_bytes(arr.astype(np.float32))


def test_npz_entries_are_stored_with_fixed_metadata():
    """No deflate (its bytes differ between zlib and zlib-ng), no platform-dependent creator system."""
    for p in fmt.GOLDEN_DIR.glob("*.npz"):
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                assert info.compress_type == zipfile.ZIP_STORED and info.create_system == 3, (p.name, info)
                assert info.date_time == (1980, 1, 1, 0, 0, 0), (p.name, info)
                assert zf.read(info) == fmt.npy_bytes(np.load(io.BytesIO(zf.read(info)))), (p.name, info)


def test_cli_golden(tmp_path, capsys):
    from proofs_check.__main__ import main

    assert main(["golden", "--out", str(tmp_path), "--cases", "adagrad_diag/well_4x3"]) == 0
    out = capsys.readouterr().out
    assert "adagrad_diag__well_4x3.json" in out
    assert (tmp_path / "adagrad_diag__well_4x3.json").read_bytes() == \
        (fmt.GOLDEN_DIR / "adagrad_diag__well_4x3.json").read_bytes()
    assert main(["golden", "--out", str(tmp_path), "--cases", "nope/x"]) == 2
    assert main(["golden", "--cases", "adagrad_diag/well_4x3"]) == 2  # --out is required unless --list
    assert "--out DIR is required" in capsys.readouterr().err
    assert main(["golden", "--list"]) == 0
    assert "adagrad_diag/well_4x3" in capsys.readouterr().out.split()


def test_krad_ref_never_imports_proofs_check():
    """Dependencies point one way (DESIGN.md): no module of krad_ref imports proofs_check, even lazily; golden
    generation is proofs_check's own command, and krad_ref.crossval has no ``generate`` subcommand any more."""
    import ast
    from pathlib import Path

    import krad_ref
    from krad_ref.crossval.__main__ import build_parser

    offenders = []
    for path in Path(krad_ref.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            offenders += [f"{path}:{node.lineno}" for m in modules if m.split(".")[0] == "proofs_check"]
    assert offenders == []
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["generate", "--out", "x"])
    assert exc.value.code == 2


def test_no_mpmath_or_hypothesis_at_import():
    code = ("import sys, krad_ref.crossval, krad_ref.crossval.format, krad_ref.crossval.tolerance, "
            "krad_ref.crossval.__main__; "
            "print(','.join(m for m in ('mpmath', 'hypothesis', 'proofs_check') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("stem", _ids())
def test_json_validates_against_schema(stem):
    doc = json.loads((fmt.GOLDEN_DIR / f"{stem}.json").read_text())
    schema = fmt.load_schema()
    fmt.check_schema(doc, schema)
    assert doc["format"] == fmt.FORMAT and doc["version"] == fmt.VERSION
    assert list(doc) == ["format", "version", "case", "description", "algorithm", "config", "shape", "dps",
                         "inputs", "steps"]


def test_schema_validator_rejects_bad_documents():
    doc = json.loads((fmt.GOLDEN_DIR / "kradagrad_star__well_5x3.json").read_text())
    bad = json.loads(json.dumps(doc))
    bad["steps"][1]["direction"][0][0] = "0x1p-3"
    with pytest.raises(fmt.GoldenFormatError, match=r"\$\.steps\[1\]\.direction"):
        fmt.from_document(bad)
    bad = json.loads(json.dumps(doc))
    del bad["steps"][0]["tolerance"]["float32"]
    with pytest.raises(fmt.GoldenFormatError, match="float32"):
        fmt.from_document(bad)
    bad = json.loads(json.dumps(doc))
    bad["version"] = 2
    with pytest.raises(fmt.GoldenFormatError, match="version"):
        fmt.from_document(bad)
    bad = json.loads(json.dumps(doc))
    bad["steps"][0]["factors"][0][1] = bad["steps"][0]["factors"][0][1][:-1]
    with pytest.raises(fmt.GoldenFormatError, match="ragged"):
        fmt.from_document(bad)
    bad = json.loads(json.dumps(doc))
    bad["shape"] = [3, 5]
    with pytest.raises(fmt.GoldenFormatError, match="shape"):
        fmt.from_document(bad)
    with pytest.raises(fmt.GoldenFormatError, match="not valid JSON"):
        fmt.loads("{")


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for x in obj:
            yield from _strings(x)


def test_decimal_strings_round_trip_exactly():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**63 - 1, size=2000, dtype=np.int64).view(np.float64)
    vals = np.concatenate([bits[np.isfinite(bits)], [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1e300, 0.1, 1 / 3]])
    enc = fmt.encode_array(vals)
    assert all(fmt.DECIMAL_RE.match(s) for s in enc)
    dec = fmt.decode_array(enc)
    assert np.array_equal(dec.view(np.uint64), vals.view(np.uint64))
    for stem in _ids():  # every stored string is the canonical (shortest) form of its float64
        doc = json.loads((fmt.GOLDEN_DIR / f"{stem}.json").read_text())
        for part in (doc["inputs"], [s["factors"] + (s["roots"] or []) + [s["direction"]] for s in doc["steps"]]):
            for s in _strings(part if isinstance(part, list) else list(part.values())):
                if s is not None:
                    assert repr(float(s)) == s


@pytest.mark.parametrize("stem", _ids())
def test_npz_twin_equals_json(stem):
    a = CASES[stem]
    b = fmt.load(fmt.GOLDEN_DIR / f"{stem}.npz")
    assert fmt.to_json(a) == fmt.to_json(b)
    with np.load(fmt.GOLDEN_DIR / f"{stem}.npz") as z:  # plain np.load reads it
        assert np.array_equal(z["steps/0/direction"], a.steps[0].direction)
        assert np.array_equal(z["inputs/grads/0"], a.grads[0])


def test_npz_tampering_is_detected(tmp_path):
    case = CASES["kradagrad_star__well_5x3"]
    jp, npp = fmt.dump(case, tmp_path)
    with np.load(npp) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["steps/0/direction"] = np.nextafter(arrays["steps/0/direction"], np.inf)  # one ulp
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(fmt.GoldenFormatError, match="differs"):
        fmt.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("stem", _ids())
def test_inputs_are_float32_exact_and_init_matches_krad_ref(stem):
    case = CASES[stem]
    for g in case.grads:
        assert np.array_equal(g.astype(np.float32).astype(np.float64), g)
    init = fmt.initial_quantities(case)
    for a, b in zip(init["factors"], case.init["factors"]):
        assert np.array_equal(a, b)
    if case.init["roots"] is not None:
        for a, b in zip(init["roots"], case.init["roots"]):
            assert np.array_equal(a, b)


def _worst(case, run, dtype):
    worst = {q: 0.0 for q in T.QUANTITIES}
    for step, got in zip(case.steps, run):
        for q, v in T.compare(step.expected(), got, step.tolerance[dtype]).items():
            if v is not None:
                worst[q] = max(worst[q], v)
    return worst


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("stem", _ids())
def test_krad_ref_passes_its_own_golden_vectors(stem, dtype):
    case = CASES[stem]
    run = fmt.replay(case, dtype)
    worst = _worst(case, run, dtype)
    assert all(v <= 1.0 for v in worst.values()), worst
    # not vacuous: the real rounding error uses a visible part of the budget somewhere in the case
    assert max(worst.values()) >= 1e-3, worst


def test_tolerances_are_meaningful_on_well_conditioned_cases():
    case = CASES["kradagrad_star__well_5x3"]
    for step in case.steps:
        for q in T.QUANTITIES:
            t64, t32 = step.tolerance["float64"][q], step.tolerance["float32"][q]
            assert max(np.atleast_1d(t64)) < 1e-10 and max(np.atleast_1d(t32)) < 1e-2
            assert np.all(np.asarray(t32) > np.asarray(t64))
    # and the model grows with the conditioning: the kappa ~ 1e10 case has looser root/direction tolerances
    ill = CASES["kradagrad_star__ill_5x4"]
    assert max(ill.steps[-1].tolerance["float64"]["roots"]) > 1e4 * max(case.steps[-1].tolerance["float64"]["roots"])


@pytest.mark.parametrize("stem", _ids())
def test_perturbation_of_100_tol_fails(stem):
    case = CASES[stem]
    rng = np.random.default_rng(1)
    for dtype in ("float64", "float32"):
        for step in case.steps[:2]:
            exp = step.expected()
            tol = step.tolerance[dtype]
            for q in T.QUANTITIES:
                if exp[q] is None:
                    continue
                arrays = exp[q] if q != "direction" else (exp[q],)
                tq = tol[q] if q != "direction" else (tol[q],)
                bumped = []
                for X, t in zip(arrays, tq):
                    E = rng.standard_normal(X.shape)
                    scale = max(np.linalg.norm(X), 1e-300)
                    bumped.append(X + E / np.linalg.norm(E) * 100 * t * scale)
                got = dict(exp)
                got[q] = tuple(bumped) if q != "direction" else bumped[0]
                ratio = T.compare(exp, got, tol)[q]
                assert ratio > 1 and ratio == pytest.approx(100, rel=1e-3)
                assert T.compare(exp, exp, tol)[q] == 0.0


def test_a_realistic_bug_is_caught():
    """An inverse square root where the fourth root belongs (exponent 1/2 instead of 1/4): the direction and
    roots of the first step already fail, by orders of magnitude."""
    import dataclasses

    from krad_ref import algorithm

    case = CASES["kradagrad_star__well_5x3"]
    alg = algorithm.get(case.algorithm)
    cfg = dataclasses.replace(fmt.make_config(case), exponent=0.5)
    state = alg.init(case.shape, cfg)
    direction, state = alg.update(case.grads[0], state, cfg)
    r = T.compare(case.steps[0].expected(), fmt.quantities(case.algorithm, state, direction),
                  case.steps[0].tolerance["float32"])
    assert r["factors"] <= 1 and r["roots"] > 100 and r["direction"] > 100


def test_step_tolerances_from_a_reference_run_match_the_golden_model():
    """The harness computes tolerances for new gradient sequences from a float64 reference run; on a golden case
    they agree with the shipped ones to the power-of-two rounding."""
    case = CASES["shampoo__rank1_5x3"]
    tols = T.step_tolerances(case.algorithm, fmt.make_config(case), case.shape, case.expected(), case.grads,
                             "float64", init_factors=case.init["factors"])
    for t, step in zip(tols, case.steps):
        for q in T.QUANTITIES:
            a, b = np.atleast_1d(t[q]), np.atleast_1d(step.tolerance["float64"][q])
            assert np.all(a <= b) and np.all(b < 2 * a)


def test_full_curated_list_passes_in_both_dtypes(tmp_path):
    """Every curated case (not only the shipped ones: ill-conditioned KrADagrad and Shampoo, decay, relative eps,
    reference-code variants, vectors, the MBAG family with eigh and fixed-T_NS Newton-Schulz roots) regenerates, loads
    from .json and .npz, and krad_ref passes it in float64 and in float32."""
    from proofs_check import golden

    assert {cid.split("/")[0] for cid in golden.case_ids()} >= {"mbag", "mbag_ema", "mbag_n"}
    paths = golden.generate(tmp_path)
    assert len(paths) == len(golden.case_ids()) >= 20
    for p in paths:
        case = fmt.load(p.with_suffix(".npz"))
        for dtype in ("float64", "float32"):
            worst = _worst(case, fmt.replay(case, dtype), dtype)
            assert all(v <= 1.0 for v in worst.values()), (case.case_id, dtype, worst)


def test_mbag_golden_cases_are_shipped_and_meaningful():
    """MBAG (errata 6): a well-conditioned eigh case and a tau < mn Newton-Schulz case are shipped; their tolerances
    are tight in float64 and below 1 in float32, and the ill-conditioned curated case has looser ones."""
    from proofs_check import golden

    well, ns = CASES["mbag__well_4x3"], CASES["mbag__tau6_ns_4x3"]
    assert well.config["root_method"] == "eigh" and ns.config["root_method"] == "newton_schulz"
    assert ns.config["tau"] == 6 and ns.steps[0].factors[0].shape == (2, 6, 6)
    for case in (well, ns):
        for step in case.steps:
            for q in T.QUANTITIES:
                assert max(np.atleast_1d(step.tolerance["float64"][q])) < 1e-9
                assert max(np.atleast_1d(step.tolerance["float32"][q])) < 1
    ill = golden.build_case(golden.CASES["mbag/ill_ns_4x3"])
    assert max(ill.steps[-1].tolerance["float64"]["roots"]) > 1e3 * max(well.steps[-1].tolerance["float64"]["roots"])


def test_mbag_newton_schulz_root_is_compared_at_the_same_iteration_count():
    """Errata 6: the expected NS root is T_NS exact Newton-Schulz steps, not H^(1/2): krad_ref's T_NS = 5 root is
    within tolerance of it, while the exact square root is far from it (the truncation error is not rounding)."""
    from proofs_check import twins

    case = CASES["mbag__tau6_ns_4x3"]
    step = case.steps[-1]
    got = fmt.replay(case, "float64")[-1]
    assert T.compare(step.expected(), got, step.tolerance["float64"])["roots"] <= 1
    H = step.factors[0]
    exact = tuple(np.stack([twins.to_float(twins.psd_fn(Hi, 0.5)) for Hi in H])[None])
    assert T.compare(step.expected(), {"roots": exact}, step.tolerance["float64"])["roots"] > 100
