"""toolkit.measure: each reader on its shipped samples, sniffing, bad files, parameters."""
import json
import re
import shutil
from pathlib import Path

import pytest

import toolkit
from toolkit import measure
from toolkit.constants import MIB, PAGE_SIZE
from toolkit.measure import SAMPLES, load
from toolkit.qemu import harness, readers
from toolkit.qemu import dirtyrate

REC = SAMPLES / "qemu-10.0-tcg"
QEMU_DATA = Path(__file__).parent / "data" / "qemu"
SAMPLE_KINDS = {
    REC / "page-sampling.json": "query-dirty-rate",
    REC / "page-sampling-ms.json": "query-dirty-rate",
    REC / "dirty-bitmap.json": "query-dirty-rate",
    SAMPLES / "dirty-ring-2vcpu.json": "query-dirty-rate",
    REC / "page-sampling.hmp.txt": "info-dirty-rate",
    REC / "page-sampling-ms.hmp.txt": "info-dirty-rate",
    REC / "dirty-bitmap.hmp.txt": "info-dirty-rate",
    SAMPLES / "dirty-ring-2vcpu.hmp.txt": "info-dirty-rate",
    SAMPLES / "virsh-domstats-dirtyrate.txt": "virsh-dirtyrate",
    SAMPLES / "virsh-domstats-dirtyrate-ring.txt": "virsh-dirtyrate",
    SAMPLES / "domjobinfo.txt": "domjobinfo",
    SAMPLES / "domjobinfo-completed.txt": "domjobinfo",
    SAMPLES / "query-migrate.jsonl": "query-migrate",
    SAMPLES / "query-migrate-saturated.jsonl": "query-migrate",
}


def _copy(tmp_path, sample, edit=None, name=None):
    text = Path(sample).read_text()
    path = tmp_path / (name or Path(sample).name)
    path.write_text(edit(text) if edit else text)
    return path


# --- QMP query-dirty-rate ----------------------------------------------------------------

def test_query_dirty_rate_page_sampling_recorded():
    m = measure.read_query_dirty_rate(REC / "page-sampling.json")
    assert (m.kind, m.mode, m.sample_pages, m.calc_time) == ("query-dirty-rate",
                                                             "page-sampling", 512, 1.0)
    assert m.dirty_rate == 72 * MIB and m.per_vcpu_dirty_rate == ()
    assert m.start_time == 1796177491.0 and m.ram_size is None and m.page_size == PAGE_SIZE
    assert m.source == str(REC / "page-sampling.json")


def test_query_dirty_rate_millisecond_unit():
    m = measure.read_query_dirty_rate(REC / "page-sampling-ms.json")
    assert m.calc_time == 0.5 and m.dirty_rate == 80 * MIB
    assert m.fields["calc-time-unit"] == "millisecond"


def test_query_dirty_rate_dirty_bitmap_reads_zero_under_tcg():
    m = measure.read_query_dirty_rate(REC / "dirty-bitmap.json")
    assert m.mode == "dirty-bitmap" and m.dirty_rate == 0 and m.sample_pages is None
    assert any("TCG" in n for n in m.notes)


def test_query_dirty_rate_dirty_ring_per_vcpu():
    m = measure.read_query_dirty_rate(SAMPLES / "dirty-ring-2vcpu.json")
    assert m.mode == "dirty-ring" and m.calc_time == 2.0
    assert m.per_vcpu_dirty_rate == (140.0 * MIB, 77.0 * MIB)
    assert m.dirty_rate == 217 * MIB == sum(m.per_vcpu_dirty_rate)
    assert m.to_parameters() == {"dirty_rate": 217.0 * MIB, "vcpus": 2}


def test_dirty_ring_refused_under_tcg_is_an_error_naming_the_file():
    path = REC / "dirty-ring.error.json"
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: QEMU answered an error") +
                       ".*dirty-ring is not enabled.*GenericError"):
        load(path)


def test_status_measuring_or_unstarted_names_file_and_line():
    """Both recorded: right after calc-dirty-rate QEMU says unstarted, then measuring."""
    for status in ("measuring", "unstarted"):
        path = REC / f"{status}.json"
        with pytest.raises(ValueError, match=re.escape(f"{path}:3: status '{status}'")):
            load(path)


@pytest.mark.parametrize("reply", [
    {"return": {"status": "measuring"}},                        # no other field yet
    {"status": "measuring", "start-time": 1796177491},          # bare, as virsh prints it
    {"return": {"status": "unstarted", "dirty-rate": -1}},
])
def test_a_bare_dirty_rate_status_is_not_taken_for_a_query_migrate_log(tmp_path, reply):
    # DirtyRateStatus (unstarted, measuring, measured) shares no value with
    # MigrationStatus: the reader of query-dirty-rate says what is wrong, on its line
    path = tmp_path / "reply.json"
    path.write_text(json.dumps(reply) + "\n")
    status = reply.get("return", reply)["status"]
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: status '{status}', not "
                                                   "'measured'")):
        load(path)
    path.write_text(json.dumps({"return": {"status": "measured", "dirty-rate": 72}}))
    with pytest.raises(ValueError, match=r"reply.json:1: status 'measured' but no 'calc-time'"):
        load(path)


def test_qmp_session_lines_take_the_last_answer(tmp_path):
    reply = json.loads((REC / "page-sampling.json").read_text())
    lines = [{"QMP": {"version": {}}}, {"return": {}}, {"return": {**reply["return"],
                                                                    "status": "measuring"}},
             {"event": "STOP"}, reply]
    path = tmp_path / "session.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert load(path).dirty_rate == 72 * MIB


# --- HMP info dirty_rate -----------------------------------------------------------------

def test_hmp_matches_the_qmp_reply_of_the_same_calculation():
    for name in ("page-sampling", "page-sampling-ms", "dirty-bitmap"):
        qmp = measure.read_query_dirty_rate(REC / f"{name}.json")
        hmp = measure.read_info_dirty_rate(REC / f"{name}.hmp.txt")
        assert hmp.kind == "info-dirty-rate"
        for attr in ("dirty_rate", "mode", "sample_pages", "start_time"):
            assert getattr(hmp, attr) == getattr(qmp, attr), (name, attr)
    hmp = measure.read_info_dirty_rate(REC / "page-sampling.hmp.txt")
    assert hmp.calc_time == 1.0


def test_hmp_sub_second_period_is_unknown():
    m = measure.read_info_dirty_rate(REC / "page-sampling-ms.hmp.txt")
    assert m.calc_time is None and any("whole seconds" in n for n in m.notes)


def test_hmp_per_vcpu_lines():
    m = measure.read_info_dirty_rate(SAMPLES / "dirty-ring-2vcpu.hmp.txt")
    assert m.per_vcpu_dirty_rate == (140.0 * MIB, 77.0 * MIB) and m.calc_time == 2.0


def test_hmp_prompt_lines_are_skipped(tmp_path):
    path = _copy(tmp_path, REC / "page-sampling.hmp.txt", lambda t: "(qemu) info dirty_rate\n" + t)
    assert measure.read_info_dirty_rate(path).dirty_rate == 72 * MIB


# --- virsh domstats --dirtyrate ----------------------------------------------------------

def test_virsh_dirtyrate_page_sampling():
    m = measure.read_virsh_dirtyrate(SAMPLES / "virsh-domstats-dirtyrate.txt")
    assert (m.kind, m.mode, m.calc_time, m.start_time) == ("virsh-dirtyrate", "page-sampling",
                                                           1.0, 1796176887.0)
    assert m.dirty_rate == 412 * MIB and m.ram_size == 16 * 2**30
    assert m.to_parameters() == {"dirty_rate": 412.0 * MIB, "ram_size": 16 * 2**30}


def test_virsh_dirtyrate_ring_per_vcpu():
    m = measure.read_virsh_dirtyrate(SAMPLES / "virsh-domstats-dirtyrate-ring.txt")
    assert m.mode == "dirty-ring" and m.calc_time == 2.0 and m.ram_size is None
    assert m.per_vcpu_dirty_rate == (140.0 * MIB, 77.0 * MIB) and m.dirty_rate == 217 * MIB


def test_virsh_two_domains_refused(tmp_path):
    text = (SAMPLES / "virsh-domstats-dirtyrate-ring.txt").read_text()
    path = tmp_path / "two.txt"
    path.write_text(text + text.replace("vm1", "vm2"))
    with pytest.raises(ValueError, match=re.escape(f"{path}:10: a second domain")):
        load(path)


# --- virsh domjobinfo --------------------------------------------------------------------

def _converging_samples():
    return readers.read_replies(SAMPLES / "query-migrate.jsonl")


def test_domjobinfo_active_job():
    m = measure.read_domjobinfo(SAMPLES / "domjobinfo.txt")
    assert m.kind == "domjobinfo" and m.page_size == 4096
    assert m.dirty_rate == 14749 * 4096
    # 3 decimals of MiB, rounded to whole pages: QEMU's ram.total exactly
    assert m.ram_size == _converging_samples()[1]["ram"]["total"] == 268967936
    assert m.fields["Iteration"] == 2 and m.fields["Expected downtime"] == 784
    assert m.fields["Job type"] == "Unbounded" and m.fields["Operation"] == "Outgoing migration"
    assert m.fields["Data processed"] == round(144.638 * MIB)
    assert m.fields["Memory bandwidth"] == pytest.approx(96.220 * MIB)
    assert m.to_parameters() == {"dirty_rate": 14749.0 * 4096, "ram_size": 268967936}


def test_domjobinfo_labels_are_the_readers_vocabulary():
    """Each number equals the query-migrate sample it was printed from, to virsh's 3 decimals."""
    sample = next(r for r in _converging_samples() if r.get("total-time") == 1500)
    expected = readers.domjobinfo_fields(sample)
    got = measure.read_domjobinfo(SAMPLES / "domjobinfo.txt").fields
    shared = set(expected) & set(got)
    assert len(shared) >= 15
    for label in shared:
        assert got[label] == pytest.approx(expected[label], rel=5e-5, abs=1), label


def test_domjobinfo_completed_has_no_dirty_rate():
    m = measure.read_domjobinfo(SAMPLES / "domjobinfo-completed.txt")
    assert m.dirty_rate is None and m.ram_size == 268967936
    assert m.fields["Total downtime"] == 23 and m.fields["Iteration"] == 6
    assert any("completed" in n for n in m.notes)
    assert m.to_parameters() == {"ram_size": 268967936}


def test_domjobinfo_no_job(tmp_path):
    path = tmp_path / "none.txt"
    path.write_text("Job type:         None        \n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: 'Job type: None'")):
        load(path)


# --- query-migrate log -------------------------------------------------------------------

def test_query_migrate_log_rate_and_ram():
    m = measure.read_query_migrate_log(SAMPLES / "query-migrate.jsonl")
    assert m.kind == "query-migrate" and m.ram_size == 268967936 and m.page_size == 4096
    assert m.dirty_rate == pytest.approx(14749 * 4096, rel=1e-12)
    # one rate period: from the setup sync (setup-time 1 ms) to the second sync, which lies
    # between the samples at total-time 1300 and 1400 ms
    assert m.calc_time == pytest.approx(1.349)
    assert m.dirty_curve == (pytest.approx((1.349, 14749 * 1.349)),)
    assert m.fields["Dirty rate"] == 14749 and m.fields["Iteration"] == 4
    with pytest.raises(ValueError, match=re.escape(str(SAMPLES / "query-migrate.jsonl")) +
                       ".*1 point"):
        m.to_parameters(curve=True)


def test_query_migrate_curve_matches_the_traced_syncs():
    """Each curve point's pages equal QEMU's own count at that sync (the trace's
    migration_bitmap_sync_end dirty_pages), within the sample interval's uncertainty."""
    m = measure.read_query_migrate_log(SAMPLES / "query-migrate-saturated.jsonl")
    traced = [r.args["dirty_pages"] for r in readers.read_trace(QEMU_DATA / "cancelled" /
                                                                "src-trace.log")
              if r.event == "migration_bitmap_sync_end"][1:]
    assert len(m.dirty_curve) == 6
    for (t, pages), count in zip(m.dirty_curve, traced):
        assert pages == pytest.approx(count, rel=0.03)
    assert m.calc_time == pytest.approx(8.65)


def test_query_migrate_curve_fits_into_a_scenario():
    m = load(SAMPLES / "query-migrate-saturated.jsonl")
    fit = m.fit_dirty_curve()
    # every period is 1.4-1.65 s, too narrow a span to see the 4 096-page range saturate:
    # the fit is a straight line at about the rate QEMU reported
    assert fit["rate"] == pytest.approx(m.dirty_rate / PAGE_SIZE, rel=0.1)
    assert fit["rms_error"] < 100
    params = m.to_parameters(curve=True)
    assert params["ram_size"] == m.ram_size and params["dirty_rate"] == fit["dirty_rate"]
    assert params["workload"] == fit["workload"]
    toolkit.Scenario(**params)


def test_query_migrate_bare_replies_and_return_shape(tmp_path):
    replies = _converging_samples()
    path = tmp_path / "bare.jsonl"
    path.write_text("".join(json.dumps({"return": r}) + "\n" for r in replies))
    a = load(path)
    b = load(SAMPLES / "query-migrate.jsonl")
    assert (a.kind, a.dirty_rate, a.dirty_curve) == ("query-migrate", b.dirty_rate,
                                                      b.dirty_curve)


def test_query_migrate_first_pass_only_has_no_rate(tmp_path):
    path = _copy(tmp_path, SAMPLES / "query-migrate.jsonl",
                 lambda t: "".join(t.splitlines(keepends=True)[:10]))
    m = load(path)
    assert m.dirty_rate is None and m.dirty_curve == () and m.ram_size == 268967936
    assert m.to_parameters() == {"ram_size": 268967936}


# --- sniffing ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", list(SAMPLE_KINDS), ids=lambda p: p.name)
def test_sniffing_finds_each_samples_kind(path):
    assert load(path).kind == SAMPLE_KINDS[path]
    assert load(path, kind=SAMPLE_KINDS[path]).kind == SAMPLE_KINDS[path]


def test_unknown_format_lists_the_kinds(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("time,rate\n1,2\n")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*query-dirty-rate.*"
                       "info-dirty-rate.*virsh-dirtyrate.*domjobinfo.*query-migrate"):
        load(path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty file"):
        load(empty)
    with pytest.raises(ValueError, match="kind must be one of"):
        load(SAMPLES / "domjobinfo.txt", kind="domstats")


def test_wrong_kind_is_the_readers_error():
    with pytest.raises(ValueError, match=re.escape(str(SAMPLES / "domjobinfo.txt"))):
        load(SAMPLES / "domjobinfo.txt", kind="info-dirty-rate")


# --- bad files: the file and the line ----------------------------------------------------

def test_truncated_json(tmp_path):
    path = _copy(tmp_path, REC / "page-sampling.json", lambda t: t[: len(t) // 2])
    with pytest.raises(ValueError, match=re.escape(f"{path}:") + r"\d+: bad JSON"):
        load(path)


def test_truncated_query_migrate_line(tmp_path):
    path = _copy(tmp_path, SAMPLES / "query-migrate.jsonl", lambda t: t[: len(t) - 40])
    with pytest.raises(ValueError, match=re.escape(f"{path}:26: bad JSON")):
        load(path)


@pytest.mark.parametrize("sample, old, new, where", [
    (REC / "page-sampling.json", '"dirty-rate": 72', '"dirty-rate": -72', ":5: dirty-rate"),
    (REC / "page-sampling.json", '"calc-time": 1', '"calc-time": "1"', ":9: calc-time"),
    (REC / "page-sampling.hmp.txt", "72 (MB/s)", "7x2 (MB/s)", ":6: Dirty rate"),
    (REC / "page-sampling.hmp.txt", "Period: 1 (sec)", "Period: one (sec)",
     ":4: Period must be an integer"),
    (SAMPLES / "virsh-domstats-dirtyrate.txt", "megabytes_per_second=412",
     "megabytes_per_second=4l2", ":11: dirtyrate.megabytes_per_second"),
    (SAMPLES / "virsh-domstats-dirtyrate-ring.txt", "vcpu.1.megabytes_per_second=77",
     "vcpu.1.megabytes_per_second=-77", ":8: dirtyrate.vcpu.1.megabytes_per_second"),
    (SAMPLES / "domjobinfo.txt", "14749        pages/s", "lots pages/s", ":11: 'Dirty rate'"),
    (SAMPLES / "domjobinfo.txt", "Data total:       256.508 MiB", "Data total:       256,508 MiB",
     ":6: 'Data total'"),
    (SAMPLES / "query-migrate.jsonl", '"dirty-pages-rate": 14749', '"dirty-pages-rate": -1',
     ":15: ram.dirty-pages-rate"),
    (SAMPLES / "query-migrate.jsonl", '"total-time": 700', '"total-time": "700"',
     ":8: total-time"),
])
def test_a_bad_number_names_file_line_and_field(tmp_path, sample, old, new, where):
    text = sample.read_text()
    assert old in text
    path = _copy(tmp_path, sample, lambda t: t.replace(old, new, 1))
    with pytest.raises(ValueError, match=re.escape(f"{path}{where}")):
        load(path)


@pytest.mark.parametrize("sample, old, new, where", [
    (REC / "page-sampling.hmp.txt", "Status: measured", "Status: measuring", ":1: status"),
    (SAMPLES / "virsh-domstats-dirtyrate.txt", "calc_status=2", "calc_status=1",
     ":8: status 'measuring'"),
    (REC / "page-sampling.json", '"measured"', '"unstarted"', ":3: status 'unstarted'"),
])
def test_not_measured_yet(tmp_path, sample, old, new, where):
    path = _copy(tmp_path, sample, lambda t: t.replace(old, new, 1))
    with pytest.raises(ValueError, match=re.escape(f"{path}{where}")):
        load(path)


@pytest.mark.parametrize("sample, line, where", [
    (REC / "page-sampling.hmp.txt", "Temperature: 3 (C)\n", ":7: not a line of HMP"),
    (SAMPLES / "virsh-domstats-dirtyrate.txt", "error: failed to get domain 'vm0'\n",
     ":14: not a line of 'virsh domstats'"),
    (SAMPLES / "domjobinfo.txt", "error: Requested operation is not valid\n",
     ":20: virsh reported an error"),
    (SAMPLES / "domjobinfo.txt", "Iteration 3\n", ":20: not a 'Label: value' line"),
])
def test_foreign_lines(tmp_path, sample, line, where):
    path = _copy(tmp_path, sample, lambda t: t + line)
    with pytest.raises(ValueError, match=re.escape(f"{path}{where}")):
        load(path, kind=SAMPLE_KINDS[sample])


# --- parameters --------------------------------------------------------------------------

@pytest.mark.parametrize("path", list(SAMPLE_KINDS), ids=lambda p: p.name)
def test_to_parameters_round_trips_into_a_scenario(path):
    m = load(path)
    params = m.to_parameters()
    assert set(params) <= set(toolkit.PARAMETERS and {p.name for p in toolkit.PARAMETERS})
    s = toolkit.Scenario(**params)
    if m.dirty_rate is not None:
        assert s.dirty_rate == m.dirty_rate == params["dirty_rate"]
    else:
        assert "dirty_rate" not in params
    if m.ram_size is not None:
        assert s.ram_size == m.ram_size


def test_lazy_exports():
    assert toolkit.load is measure.load and toolkit.Measurement is measure.Measurement
    assert "load" in dir(toolkit)


# --- the recording: QEMU against the guest's own count -----------------------------------

def test_recorded_page_sampling_is_within_3x_of_the_guests_write_rate():
    rec = json.loads((REC / "recording.json").read_text())
    assert rec["runs"]["dirty-ring"]["error"].startswith("mode dirty-ring is not enabled")
    for name in ("page-sampling", "page-sampling-ms"):
        run = rec["runs"][name]
        measured = load(REC / f"{name}.json").dirty_rate
        assert measured == run["qemu_rate"] * PAGE_SIZE
        guest = run["guest_rate"] * PAGE_SIZE
        # the guest met its pace, and wrote fewer pages than its range in calc-time
        assert run["guest_rate"] == pytest.approx(rec["paced_rate"], rel=0.05)
        assert run["guest_rate"] * load(REC / f"{name}.json").calc_time < rec["pages"]
        assert guest / 3 < measured < guest * 3, (name, measured / guest)


def test_recorder_checks_its_arguments_before_qemu(tmp_path, capsys):
    assert dirtyrate.main(["--out", str(tmp_path), "--calc-time", "0"]) == 2
    assert "calc_time must be an integer in [1, 60]" in capsys.readouterr().err
    assert dirtyrate.main(["--out", str(tmp_path), "--pages", "70000"]) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.qemu
def test_record_live(tmp_path):
    """A fresh recording (~5 s of QEMU): every mode's file, page-sampling within 3x."""
    if harness.qemu_version() is None or shutil.which("nasm") is None:
        pytest.skip("needs qemu-system-x86_64 and nasm (.ci/install-qemu)")
    rec = dirtyrate.record(tmp_path, ram_mib=128, pages=16384, rate=8000)
    for name in ("page-sampling", "dirty-bitmap", "page-sampling-ms"):
        assert load(tmp_path / f"{name}.json").kind == "query-dirty-rate"
        assert load(tmp_path / f"{name}.hmp.txt").kind == "info-dirty-rate"
    run = rec["runs"]["page-sampling"]
    measured = load(tmp_path / "page-sampling.json").dirty_rate
    assert run["guest_rate"] * PAGE_SIZE / 3 < measured < run["guest_rate"] * PAGE_SIZE * 3
    if "error" in rec["runs"]["dirty-ring"]:   # TCG
        with pytest.raises(ValueError, match="dirty-ring"):
            load(tmp_path / "dirty-ring.error.json")


def test_query_migrate_log_started_mid_migration(tmp_path):
    """Without the setup sync, a rate period starts only where the reported rate changed."""
    lines = (SAMPLES / "query-migrate-saturated.jsonl").read_text().splitlines(keepends=True)
    path = tmp_path / "late.jsonl"
    path.write_text("".join(lines[20:]))   # from 2.0 s: after the first update (at ~1.65 s)
    full, late = load(SAMPLES / "query-migrate-saturated.jsonl"), load(path)
    # the update at ~3.05 s changed the rate (2534 -> 2475): periods from there on
    assert late.dirty_curve == full.dirty_curve[2:]


def test_a_large_page_size_is_noted(tmp_path):
    path = _copy(tmp_path, SAMPLES / "domjobinfo.txt",
                 lambda t: t.replace("4096         bytes", "65536        bytes"))
    m = load(path)
    assert m.page_size == 65536 and m.dirty_rate == 14749 * 65536
    assert any("16x the pages" in n for n in m.notes)
