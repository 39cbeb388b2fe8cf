"""The coarse (2x2x2) q points' scf mesh and the audit of the archived coarse runs (betenet.qe.coarse)."""

from __future__ import annotations

import pytest

from betenet.paths import REPO_ROOT
from betenet.qe.coarse import coarse_scf_mesh, coarse_stability


@pytest.mark.parametrize(("k_scf", "mesh", "expected"), [
    ((9, 9, 9), (2, 2, 2), (10, 10, 10)),
    ((9, 9, 5), (2, 2, 2), (10, 10, 6)),
    ((12, 12, 12), (2, 2, 2), (12, 12, 12)),  # already a multiple: the el-ph run's own scf
    ((8, 8, 8), (3, 3, 3), (9, 9, 9)),
    ((1, 1, 1), (2, 2, 2), (2, 2, 2)),
])
def test_coarse_scf_mesh_is_the_smallest_multiple_at_least_as_dense(k_scf, mesh, expected):
    assert coarse_scf_mesh(k_scf, mesh) == expected


def test_the_archived_coarse_runs_name_the_odd_mesh_instabilities():
    """The archived ph_coarse logs of B2 AlRu and CsCl NbN as they were on the odd 9x9x9 scf mesh
    (``tests/data/qe/coarse-odd``, copied from the validated runs before their coarse points were redone):
    imaginary at M and R (AlRu at M is +12.5 meV on 10^3 and +14.0 on 12^3, CHANGELOG 2026-12-06).  The
    validated fcc/bcc elements, on 12x12x12, are stable at every coarse point."""
    odd = coarse_stability(REPO_ROOT / "tests" / "data" / "qe" / "coarse-odd")
    assert list(odd.material_id) == ["up0542-AlRu", "up0693-NbN"]  # the unstable first
    alru, nbn = odd.iloc[0], odd.iloc[1]
    assert alru.min_freq_meV == pytest.approx(-23.79, abs=0.01) and alru.q_2pi_alat == (0.0, -0.5, -0.5)
    assert alru.k_scf == "9x9x9" and not alru.coarse_k_commensurate and alru.state == "kept"
    assert nbn.min_freq_meV == pytest.approx(-11.25, abs=0.01) and nbn.q_2pi_alat == (-0.5, -0.5, -0.5)
    table = coarse_stability(REPO_ROOT / "data" / "qe-validated").set_index("material_id")
    for mid in ("Mo1-bcc", "W1-bcc", "Pt1-fcc", "Pd1-fcc", "up0608-Rh"):
        row = table.loc[mid]
        assert row.coarse_k_commensurate and row.min_freq_meV > 10, mid


def test_reopen_sends_an_odd_mesh_coarse_run_back_to_pending(tmp_path):
    """A copy of the AlRu run set back to what it was before its coarse points were redone (kept, coarse points
    on the el-ph scf, 9x9x9) goes back to pending with its verdict and a backup kept; a second call, and a run
    already on an even mesh (bcc Mo, 12x12x12), are refused by name."""
    import json
    import shutil

    from betenet.qe.coarse import reopen_for_coarse
    from betenet.qe.status import load_status

    src = REPO_ROOT / "data" / "qe-validated"
    for mid in ("up0542-AlRu", "Mo1-bcc"):
        shutil.copytree(src / mid, tmp_path / mid)
    path = tmp_path / "up0542-AlRu" / "status.json"
    st = json.loads(path.read_text())
    for step in ("scf_coarse", "ph_precheck"):
        st["steps"].pop(step, None)
    st["state"], st["steps"]["ph_coarse"] = "kept", {"done": True, "wall_s": 798.04}
    path.write_text(json.dumps(st))
    detail = reopen_for_coarse("up0542-AlRu", runs_dir=tmp_path)
    st = load_status("up0542-AlRu", tmp_path)
    assert st.state == "pending" and st.detail == detail and "9x9x9" in detail and "10x10x10" in detail
    assert st.quality["reopened"]["state"] == "kept" and list(tmp_path.glob("up0542-AlRu/status.json.bak-*"))
    assert st.steps["ph_elph"]["done"]  # nothing of the run is dropped here: the workflow decides what to redo
    with pytest.raises(ValueError, match="state 'pending'; expected kept"):
        reopen_for_coarse("up0542-AlRu", runs_dir=tmp_path)
    with pytest.raises(ValueError, match=r"grids.json: scf mesh \(12, 12, 12\) is already a multiple"):
        reopen_for_coarse("Mo1-bcc", runs_dir=tmp_path)


def test_coarse_phdos_below_zero_is_measured_for_the_record_flag():
    """B2 AlPd's coarse PhDOS from its odd-mesh run (frozen copy): 6.2 % of it below -1 meV, above the flag's
    0.5 %; bcc Mo's (12x12x12, stable at every coarse point) none."""
    from betenet.qe.parsers import parse_phdos
    from betenet.qe.record import COARSE_NEGATIVE_WEIGHT_TOLERANCE, coarse_imaginary_share

    alpd = coarse_imaginary_share(parse_phdos(REPO_ROOT / "tests/data/qe/coarse-odd/up0256-AlPd/phdos_coarse.dos.gz"))
    assert alpd == pytest.approx(0.0616, abs=0.001) and alpd > COARSE_NEGATIVE_WEIGHT_TOLERANCE
    assert coarse_imaginary_share(parse_phdos(REPO_ROOT / "data/qe-validated/Mo1-bcc/phdos_coarse.dos.gz")) == 0.0
