"""Campaigns: sharding, merging, the SQLite store, resume, executors and the faults of issue 8.

Toy claims with integer instances keep shards fast and outcomes exact (see test_runner.py); SLOW_CLAIM sleeps a
little per example so that a shard is still running when a test kills its worker or its client. The toy claims
are module globals: workers find them with ``Shard.module`` / ``--claims-from test_campaign``.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from hypothesis import strategies as st

from proofs_check import campaign, runner
from proofs_check import __main__ as cli
from proofs_check.claim import FAILS, Claim, Evidence, Source, get
from proofs_check.store import Store, StoreError, db_path

HERE = os.path.dirname(os.path.abspath(__file__))


def _below(limit, sleep=0.0):
    def check(n, *, dps):
        if sleep:
            time.sleep(sleep)
        return Evidence(margin=float(limit - 1 - n), scale=1.0, tol=0.0, detail={"n": n})
    return check


def _raises_above(limit):
    def check(n, *, dps):
        if n > limit:
            raise ZeroDivisionError(f"boom at {n}")
        return Evidence(1.0, 1.0, 0.0)
    return check


TOY_TRUE = Claim(id="ctoy.true", source=Source("toy", "Eq. 1"), statement="n < 2000 for n in [0, 1000]",
                 strategy=st.integers(0, 1000), check=_below(2000))
TOY_FALSE = Claim(id="ctoy.false", source=Source("toy", "Eq. 2"), statement="n < 17 for n in [0, 1000]",
                  strategy=st.integers(0, 1000), check=_below(17), expected=FAILS)
TOY_RAISES = Claim(id="ctoy.raises", source=Source("toy", "Eq. 3"), statement="-", strategy=st.integers(0, 1000),
                   check=_raises_above(900))
SLOW_CLAIM = Claim(id="ctoy.slow", source=Source("toy", "Eq. 4"), statement="n < 2000, slowly",
                   strategy=st.integers(0, 1000), check=_below(2000, sleep=0.02))

DETERMINISTIC = ("id", "verdict", "examples", "worst_margin", "tol", "counterexample", "counterexample_detail",
                 "error", "expected", "seed")


def _fields(results):
    return [{k: getattr(r, k) for k in DETERMINISTIC} for r in results]


def _serial(claims, **kw):
    return campaign.run_campaign(claims, executor="serial", **kw).results


# --- sharding and merging -------------------------------------------------------------------------------------

def test_plan_splits_examples_and_derives_seeds():
    shards = campaign.plan([TOY_TRUE, get("matrix.kron_trace")], shards=3, examples=10,
                           profile=runner.PROFILES["quick"], seed=5)
    assert [(s.claim_id, s.shard, s.examples) for s in shards[:3]] == [("ctoy.true", i, e) for i, e in
                                                                        enumerate((4, 3, 3))]
    assert all(s.seed == runner.derive_seed(5, s.claim_id, s.shard) for s in shards)
    assert shards[0].module == __name__ and shards[3].module is None  # registered claims need no module
    with pytest.raises(ValueError, match="cannot fill"):
        campaign.plan([TOY_TRUE], shards=5, examples=3, profile=runner.PROFILES["quick"], seed=0)


def test_merge_rules_and_size_order():
    base = dict(claim_id="x", seed=0, examples=10, tol=0.0, seconds=1.0, statement="s", expected="fails")
    rs = [
        dict(base, shard=0, verdict="holds", worst_margin=3.0, counterexample=None),
        dict(base, shard=1, verdict="fails", worst_margin=-1.0, counterexample=[[1, 2], [3, 4]]),
        dict(base, shard=2, verdict="fails", worst_margin=-5.0, counterexample=[[1, 2, 3]]),
        dict(base, shard=3, verdict="fails", worst_margin="nan", counterexample=[[10, 20, 30]]),
    ]
    assert campaign.size_key(rs[2]) == (3, len("[[1,2,3]]"), 2)
    m = campaign.merge(rs, seed=9)
    assert m.verdict == "fails" and m.examples == 40 and m.seconds == 4.0 and m.seed == 9
    assert m.counterexample == [[1, 2, 3]]  # 3 entries beat 4; shard 3 ties on entries, loses on JSON length
    assert str(m.worst_margin) == "nan"  # NaN is the worst margin of all
    err = campaign.merge(rs + [dict(base, shard=4, verdict="error", worst_margin=None, counterexample=7,
                                    error="E: x")], seed=9)
    assert err.verdict == "error" and err.counterexample == 7 and err.error == "shard 4: E: x"


def test_one_shard_equals_the_quick_runner():
    res = _serial([TOY_FALSE], shards=1, examples=60, seed=3)[0]
    ref = runner.run_claim(TOY_FALSE, examples=60, seed=runner.derive_seed(3, TOY_FALSE.id, 0))
    assert (res.verdict, res.examples, res.worst_margin, res.counterexample) == \
        (ref.verdict, ref.examples, ref.worst_margin, ref.counterexample) == ("fails", ref.examples, -1.0, 17)


def test_processes_campaign_equals_serial_campaign(tmp_path):
    claims = [TOY_TRUE, TOY_FALSE, get("matrix.kron_trace")]
    kw = dict(shards=3, examples=24, seed=11)
    serial = _serial(claims, **kw)
    out = campaign.run_campaign(claims, executor="processes", workers=2, directory=tmp_path / "c", **kw)
    assert _fields(out.results) == _fields(serial)
    assert [r.verdict for r in serial] == ["holds", "fails", "holds"] and serial[1].counterexample == 17
    # and the report rendered later from the store is the same again
    stored, settings, have, want = campaign.load_report(tmp_path / "c")
    assert _fields(stored) == _fields(serial) and have == want == 9 and settings["seed"] == 11


def test_raising_claim_is_a_shard_error_and_the_campaign_goes_on(tmp_path):
    seen = []
    out = campaign.run_campaign([TOY_RAISES, TOY_TRUE], executor="serial", shards=2, examples=60, seed=0,
                                directory=tmp_path / "c", on_result=seen.append)
    assert len(seen) == 4
    errs = [r for r in seen if r["verdict"] == "error"]
    assert errs and all(r["counterexample"] == 901 and "ZeroDivisionError" in r["error"] for r in errs)
    res = {r.id: r for r in out.results}
    assert res["ctoy.raises"].verdict == "error" and res["ctoy.raises"].counterexample == 901
    assert res["ctoy.true"].verdict == "holds"


# --- the store: resume, refusal, corruption ---------------------------------------------------------------------

def test_resume_runs_only_missing_shards_and_refuses_other_settings(tmp_path):
    d = tmp_path / "c"
    kw = dict(shards=4, examples=20, seed=1, executor="serial")
    seen = []
    campaign.run_campaign([TOY_TRUE], directory=d, **kw)
    with sqlite3.connect(db_path(d)) as con:  # forget two finished shards, as if the client had died
        con.execute("DELETE FROM shards WHERE shard >= 2")
    out = campaign.run_campaign([TOY_TRUE], directory=d, resume=True, on_result=seen.append, **kw)
    assert (out.ran, out.reused) == (2, 2) and sorted(r["shard"] for r in seen) == [2, 3]
    assert _fields(out.results) == _fields(_serial([TOY_TRUE], shards=4, examples=20, seed=1))
    with pytest.raises(campaign.CampaignError, match="already holds a campaign"):
        campaign.run_campaign([TOY_TRUE], directory=d, **kw)
    with pytest.raises(campaign.CampaignError, match=r"seed: stored 1, now 2"):
        campaign.run_campaign([TOY_TRUE], directory=d, resume=True, **dict(kw, seed=2))
    with sqlite3.connect(db_path(d)) as con:
        con.execute("UPDATE settings SET value = '{\"numpy\": \"0.0\"}' WHERE key = 'versions'")
    with pytest.raises(campaign.CampaignError, match="versions.numpy: stored '0.0'"):
        campaign.run_campaign([TOY_TRUE], directory=d, resume=True, **kw)
    out = campaign.run_campaign([TOY_TRUE], directory=d, resume=True, force_new=True, **kw)
    assert (out.ran, out.reused) == (4, 0) and any(p.name.endswith(".old") for p in d.iterdir())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad_row"])
def test_damaged_store_is_detected_and_never_merged(tmp_path, damage, capsys):
    d = tmp_path / "c"
    campaign.run_campaign([TOY_TRUE], directory=d, shards=2, examples=10, seed=0, executor="serial")
    path = db_path(d)
    if damage == "bad_row":
        with sqlite3.connect(path) as con:
            con.execute("UPDATE shards SET result = '{\"oops' WHERE shard = 1")
    else:
        data = bytearray(open(path, "rb").read())
        assert len(data) >= 3 * 4096
        if damage == "truncate":
            data = data[: len(data) // 2 + 100]
        else:
            data[4096:4096 + 2000] = os.urandom(2000)
        open(path, "wb").write(bytes(data))
    with pytest.raises(StoreError, match="not merged"):
        Store.open(d)
    assert cli.main(["report", str(d)]) == 2
    assert "not merged" in capsys.readouterr().err
    with pytest.raises(campaign.CampaignError, match="cannot resume"):
        campaign.run_campaign([TOY_TRUE], directory=d, resume=True, shards=2, examples=10, seed=0,
                              executor="serial")


def test_cli_campaign_and_report(tmp_path, capsys):
    d, js = tmp_path / "c", tmp_path / "r.json"
    rc = cli.main(["campaign", "--shards", "2", "--examples", "10", "--claims", "matrix.kron_trace",
                   "--executor", "serial", "--dir", str(d), "--quiet"])
    assert rc == 0 and "matrix.kron_trace" in capsys.readouterr().out
    assert cli.main(["report", str(d), "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["claims"][0]["id"] == "matrix.kron_trace" and doc["claims"][0]["examples"] == 10
    assert cli.main(["campaign", "--resume", str(d), "--shards", "3", "--quiet"]) == 2
    assert "shards: stored 2, now 3" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2


# --- faults with real processes -------------------------------------------------------------------------------

def test_killed_client_resumes_without_recomputing(tmp_path):
    """(b): SIGKILL the campaign CLI (its whole process group) after some shards are stored, then --resume."""
    d = tmp_path / "c"
    args = ["--shards", "8", "--examples", "80", "--claims", "ctoy.slow", "--claims-from", "test_campaign",
            "--seed", "4", "--executor", "processes", "--workers", "1", "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "proofs_check", "campaign", "--dir", str(d), *args],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    rows = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                with sqlite3.connect(f"file:{db_path(d)}?mode=ro", uri=True) as con:
                    rows = list(con.execute("SELECT claim_id, shard, session, finished_at FROM shards ORDER BY shard"))
            except sqlite3.Error:
                continue
            if len(rows) >= 2:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started: the client and its pool
        proc.wait(timeout=30)
    assert 2 <= len(rows) < 8, proc.stderr.read().decode()[-2000:]
    seen = []
    out = campaign.run_campaign([SLOW_CLAIM], directory=d, resume=True, shards=8, examples=80, seed=4,
                                executor="serial", on_result=seen.append)
    with Store.open(d) as st:
        after = st.rows()
    stored_before = {(c, s) for c, s, *_ in rows}
    assert not stored_before & {(r["claim_id"], r["shard"]) for r in seen}  # no finished shard recomputed
    assert out.reused == len(stored_before) and out.ran == 8 - out.reused == len(seen)
    assert [r for r in after if (r[0], r[1]) in stored_before] == rows  # first session's rows untouched
    assert _fields(out.results) == _fields(_serial([SLOW_CLAIM], shards=8, examples=80, seed=4))


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is an optional extra")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
        yield client


def test_dask_campaign_equals_serial_and_survives_a_killed_worker(dask_client):
    """(a) and item 1 on Dask: an undisturbed run and a run whose worker is SIGKILLed mid-shard both merge to
    the serial report."""
    claims = [SLOW_CLAIM, TOY_FALSE, get("matrix.kron_trace")]
    kw = dict(shards=3, examples=30, seed=2)
    serial = _fields(_serial(claims, **kw))
    assert _fields(campaign.run_campaign(claims, client=dask_client, **kw).results) == serial
    by_address = campaign.run_campaign(claims, scheduler=dask_client.scheduler.address, **kw)  # --scheduler form
    assert _fields(by_address.results) == serial

    pids = sorted(dask_client.run(os.getpid).values())
    killed = []

    def kill_once(res):
        if not killed:
            time.sleep(0.1)  # both workers are inside a shard of SLOW_CLAIM (10 examples x 20 ms)
            killed.append(pids[0])
            os.kill(pids[0], signal.SIGKILL)

    out = campaign.run_campaign([SLOW_CLAIM] + claims[1:], client=dask_client, on_result=kill_once, **kw)
    assert killed and _fields(out.results) == serial
    dask_client.wait_for_workers(2, timeout=30)
    assert pids[0] not in dask_client.run(os.getpid).values()  # the nanny started a fresh worker


def test_unreachable_scheduler_fails_fast_with_a_clear_message(tmp_path, capsys):
    pytest.importorskip("distributed", reason="dask[distributed] is an optional extra")
    t0 = time.monotonic()
    rc = cli.main(["campaign", "--claims", "matrix.kron_trace", "--shards", "1", "--examples", "2",
                   "--scheduler", "tcp://127.0.0.1:9", "--timeout", "3", "--dir", str(tmp_path / "c"), "--quiet"])
    assert rc == 2 and time.monotonic() - t0 < 15
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()  # nothing was written before the scheduler answered


def test_without_dask_auto_falls_back_to_processes_with_a_note(monkeypatch):
    monkeypatch.setattr(campaign, "_have_dask", lambda: False)
    lines = []
    out = campaign.run_campaign([TOY_TRUE], shards=2, examples=4, seed=0, workers=1, progress=lines.append)
    assert out.executor == "processes" and out.results[0].verdict == "holds"
    assert sum("dask.distributed is not installed" in line for line in lines) == 1
