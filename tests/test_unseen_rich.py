"""The unseen RICH-like PID MC (benchmarks/unseen_rich.py, issue 18), run as its command on 2,000
tracks: the documented columns, and the physics the evaluation relies on (DLL 0 outside both RICHs,
identical likelihoods for hypotheses below threshold, the kaon seen by the absence of light)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "unseen_rich.py"
DLLS = ["RichDLLe", "RichDLLmu", "RichDLLk", "RichDLLp", "RichDLLbt"]
KAON_THRESHOLD_RICH1, PION_THRESHOLD_RICH1 = 9_300.0, 2_630.0   # MeV/c (9,326 and 2,637: C4F10, n − 1 = 1.4e-3)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    out = tmp_path_factory.mktemp("rich") / "rich.parquet"
    subprocess.run([sys.executable, str(SCRIPT), "--rows", "2000", "--seed", "7", "--out", str(out)],
                   check=True, capture_output=True, timeout=120)
    return pd.read_parquet(out)


def test_columns_dtypes_and_kinematics(tracks):
    assert list(tracks.columns) == ["P", "ETA", "nTracks", "species", *DLLS, "hasRich"]
    assert len(tracks) == 2000
    assert tracks.P.dtype == tracks.ETA.dtype == np.float64 and tracks.nTracks.dtype == np.int32
    assert set(tracks.species) == {11, 13, 211, 321, 2212}
    assert np.isfinite(tracks[DLLS].to_numpy()).all()
    assert tracks.P.between(2_000, 200_000).all() and tracks.ETA.between(1.6, 5.4).all()
    assert tracks.nTracks.min() >= 3 and tracks.nTracks.std() > 50        # a broad multiplicity
    assert np.corrcoef(np.log(tracks.P), tracks.ETA)[0, 1] > 0.3         # p = pT cosh η


def test_tracks_in_neither_rich_have_every_dll_exactly_zero(tracks):
    outside = tracks[tracks.hasRich == 0]
    assert 0 < len(outside) < 0.1 * len(tracks)
    assert (outside[DLLS] == 0).all().all()
    assert (tracks[tracks.hasRich == 1].RichDLLe != 0).mean() > 0.9


def test_hypotheses_below_threshold_are_indistinguishable(tracks):
    """Below the RICH1 kaon threshold (RICH2's is higher) the kaon, proton and below-threshold
    hypotheses all expect no light: identical likelihoods. Below the pion's too, they equal the pion's."""
    below_kaon = tracks[tracks.P < KAON_THRESHOLD_RICH1]
    assert len(below_kaon) > 50
    assert (below_kaon.RichDLLk == below_kaon.RichDLLp).all() and (below_kaon.RichDLLk == below_kaon.RichDLLbt).all()
    below_pion = tracks[tracks.P < PION_THRESHOLD_RICH1]
    assert len(below_pion) > 0 and (below_pion[["RichDLLk", "RichDLLp", "RichDLLbt"]] == 0).all().all()
    above = tracks[tracks.P > KAON_THRESHOLD_RICH1]
    assert (above.RichDLLk != above.RichDLLbt).mean() > 0.9


def test_kaons_identified_below_their_threshold_by_the_missing_ring(tracks):
    """Between the pion and kaon thresholds a kaon gives no ring where a pion would: RichDLLk well
    above the pions' in the same momentum range."""
    window = tracks[(tracks.hasRich == 1) & tracks.P.between(4_000, 9_000)]
    kaons, pions = window[window.species == 321], window[window.species == 211]
    assert len(kaons) > 10 and len(pions) > 10
    assert kaons.RichDLLk.median() > pions.RichDLLk.median() + 20
