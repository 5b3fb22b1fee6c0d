"""OKS-NMS keeps exactly what a brute-force, loop-by-loop reference of the lineage keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fasterpose.evaluation.oks_nms import oks_matrix, oks_nms
from fasterpose.keypoints import COCO_17

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIGMAS = np.asarray(COCO_17.sigmas)


def reference_oks(g: np.ndarray, d: np.ndarray, a_g: float, a_d: float, in_vis: float | None) -> float:
    """One overlap, joint by joint, from the published formula."""
    terms = []
    for k in range(len(SIGMAS)):
        if in_vis is not None and not d[k, 2] > in_vis:
            continue  # the lineage masks on the candidate's joints only
        var = (2 * SIGMAS[k]) ** 2
        dist2 = (d[k, 0] - g[k, 0]) ** 2 + (d[k, 1] - g[k, 1]) ** 2
        e = dist2 / var / ((a_g + a_d) / 2 + np.spacing(1)) / 2
        terms.append(np.exp(-e))
    return float(sum(terms) / len(terms)) if terms else 0.0


def reference_nms(
    kpts: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float, in_vis: float | None
) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], -i))  # ties: higher index first
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if reference_oks(kpts[i], kpts[j], areas[i], areas[j], in_vis) <= thr]
    return keep


def random_people(rng: np.random.Generator, n: int, clusters: int) -> tuple[np.ndarray, ...]:
    """Poses in a few clusters (near-duplicates of each other), scores, areas."""
    base = rng.uniform(0, 400, size=(clusters, 17, 2))
    which = rng.integers(0, clusters, size=n)
    jitter = rng.normal(0, rng.choice([0.5, 3.0, 15.0], size=(n, 1, 1)), size=(n, 17, 2))
    xy = base[which] + jitter
    vis = rng.uniform(0, 1, size=(n, 17, 1))
    kpts = np.concatenate([xy, vis], axis=2)
    scores = rng.choice([0.3, 0.5, 0.9], size=n) if rng.uniform() < 0.5 else rng.uniform(0, 1, size=n)
    areas = rng.uniform(500, 40000, size=n)
    return kpts, scores, areas


@pytest.mark.parametrize("in_vis", [None, 0.2, 0.6])
@pytest.mark.parametrize("seed", range(12))
def test_random_cases_match_reference(seed: int, in_vis: float | None) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    kpts, scores, areas = random_people(rng, n, clusters=max(1, n // 4))
    for thr in (0.5, 0.9):
        got = oks_nms(kpts, scores, areas, SIGMAS, thr, in_vis).tolist()
        assert got == reference_nms(kpts, scores, areas, thr, in_vis)


def test_matrix_matches_pairwise_reference() -> None:
    rng = np.random.default_rng(3)
    kpts, _, areas = random_people(rng, 7, clusters=2)
    for in_vis in (None, 0.5):
        mat = oks_matrix(kpts, areas, SIGMAS, in_vis)
        for g in range(7):
            for d in range(7):
                assert mat[g, d] == pytest.approx(
                    reference_oks(kpts[g], kpts[d], areas[g], areas[d], in_vis), abs=1e-12
                )


def test_duplicates_and_edge_cases() -> None:
    pose = np.zeros((1, 17, 3))
    pose[0, :, :2] = np.arange(34).reshape(17, 2) * 10
    pose[0, :, 2] = 0.9
    kpts = np.concatenate([pose, pose, pose + [[[200.0, 0, 0]]]])
    kept = oks_nms(kpts, np.array([0.5, 0.8, 0.1]), np.full(3, 1e4), SIGMAS, 0.9)
    assert kept.tolist() == [1, 2]  # the exact duplicate with the lower score goes
    # tied scores: the lineage's scores.argsort()[::-1] visits the higher index first, so of two
    # exact duplicates with equal scores index 1 is kept; distinct poses come out 2, 1, 0
    assert oks_nms(kpts[[0, 1]], np.array([0.5, 0.5]), np.full(2, 1e4), SIGMAS, 0.9).tolist() == [1]
    assert oks_nms(
        kpts[[0, 2, 2]] + [[[0, 0, 0]], [[0, 0, 0]], [[400.0, 0, 0]]], np.full(3, 0.5), np.full(3, 1e4), SIGMAS, 0.9
    ).tolist() == [2, 1, 0]
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0), SIGMAS).tolist() == []
    # a candidate without any joint above in_vis has overlap 0 and always survives
    low = kpts.copy()
    low[0, :, 2] = 0.1
    assert oks_nms(low, np.array([0.5, 0.8, 0.1]), np.full(3, 1e4), SIGMAS, 0.9, 0.2).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="sigmas"):
        oks_nms(kpts, np.ones(3), np.ones(3), SIGMAS[:5])


def test_real_detection_poses_match_reference() -> None:
    """Real case: COCO val ground-truth poses of one crowded image, each also jittered/duplicated."""
    ann = DATA / "coco_mini" / "annotations" / "person_keypoints_val2017_mini.json"
    if not ann.is_file():
        pytest.skip(f"real data not found at {ann}")
    data = json.loads(ann.read_text())
    rng = np.random.default_rng(0)
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if a["num_keypoints"] > 0:
            by_image.setdefault(a["image_id"], []).append(a)
    checked = 0
    for anns in by_image.values():
        kp = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, 17, 3)
        kp[:, :, 2] = rng.uniform(0, 1, size=kp.shape[:2])
        area = np.array([a["area"] for a in anns])
        kpts = np.concatenate([kp, kp + rng.normal(0, 2, size=kp.shape) * [1, 1, 0]])
        areas = np.concatenate([area, area])
        scores = rng.uniform(0, 1, size=len(kpts))
        for in_vis in (None, 0.2):
            got = oks_nms(kpts, scores, areas, SIGMAS, 0.9, in_vis).tolist()
            assert got == reference_nms(kpts, scores, areas, 0.9, in_vis)
        checked += 1
    assert checked >= 5


def test_blocks_and_single_rows_keep_the_same_poses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised blocks, and the single rows taken once many candidates are alive, both keep
    exactly what the reference keeps (200 people: the first pass runs single rows, then blocks)."""
    import importlib

    module = importlib.import_module("fasterpose.evaluation.oks_nms")

    rng = np.random.default_rng(7)
    kpts, scores, areas = random_people(rng, 200, clusters=60)
    scores[::3] = 0.5  # ties
    want = reference_nms(kpts, scores, areas, 0.9, None)
    assert oks_nms(kpts, scores, areas, SIGMAS, 0.9).tolist() == want
    for block, max_alive in ((1, 10**9), (module._BLOCK, 10**9), (module._BLOCK, 0)):
        monkeypatch.setattr(module, "_BLOCK", block)
        monkeypatch.setattr(module, "_BLOCK_MAX_ALIVE", max_alive)
        for seed in range(30):
            r = np.random.default_rng(seed)
            n = int(r.integers(1, 60))
            case = random_people(r, n, clusters=max(1, n // 3))
            for in_vis in (None, 0.4):
                assert oks_nms(*case, SIGMAS, 0.7, in_vis).tolist() == reference_nms(*case, 0.7, in_vis)
        assert oks_nms(kpts, scores, areas, SIGMAS, 0.9).tolist() == want


@pytest.mark.parametrize("threshold", [0.5, 0.7, 0.9, 0.95])
def test_the_prefilter_rules_out_no_pair_the_reference_would_suppress(
    threshold: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the prefilter on at every size: random crowds, and the hardest pairs for it (a duplicate
    with one or two joints moved far, every joint and every pair of joints in turn) keep what the
    reference keeps."""
    import importlib

    module = importlib.import_module("fasterpose.evaluation.oks_nms")
    monkeypatch.setattr(module, "_PREFILTER_MIN", 0)
    assert module._far_joints_allowed(17, 0.9) == 1 and module._far_joints_allowed(17, 0.2) is None
    for seed in range(16):
        r = np.random.default_rng(100 + seed)
        n = int(r.integers(2, 50))
        case = random_people(r, n, clusters=max(1, n // 3))
        assert oks_nms(*case, SIGMAS, threshold).tolist() == reference_nms(*case, threshold, None)
    pose = np.zeros((17, 3))
    pose[:, :2] = np.random.default_rng(0).uniform(100, 200, size=(17, 2))
    pose[:, 2] = 0.9
    moved = [pose.copy()]
    for j in range(17):
        for j2 in range(j, 17):
            q = pose.copy()
            q[[j, j2], 0] += 500.0  # far: e far above _FAR for every joint
            moved.append(q)
    kpts = np.stack(moved)
    scores = np.linspace(1.0, 0.5, len(kpts))
    areas = np.full(len(kpts), 1e4)
    for i in range(1, len(kpts)):  # the pose and each moved copy alone: suppressed or not as the reference
        pair = kpts[[0, i]], scores[[0, i]], areas[[0, i]]
        assert oks_nms(*pair, SIGMAS, threshold).tolist() == reference_nms(*pair, threshold, None)
    assert oks_nms(kpts, scores, areas, SIGMAS, threshold).tolist() == reference_nms(
        kpts, scores, areas, threshold, None
    )
