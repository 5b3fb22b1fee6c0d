"""The multi-seed training study of the paper's claims (Fig. 5, Tables 5 and 6, RCE alpha/gamma) on SynthPose.

A study folder holds ``study.yaml`` (the manifest: dataset, regimes, arms, groups, claims; see
:mod:`.manifest`) and one complete experiment YAML per arm. :func:`run_study` trains every (regime,
arm, seed) through the training engine, skipping finished runs (:mod:`.runs`);
:func:`collect_results` reads them into typed :class:`StudyResults` (:mod:`.collect`, :mod:`.results`) and
tests the claims (:mod:`.claims`); :func:`write_report` writes ``results.md``, the JSON and the figures
(:mod:`.report`, :mod:`.figures`); :func:`compare_results` checks a rerun (:mod:`.check`);
:func:`execute` does all of it for the ``fasterpose study`` command (:mod:`.driver`).
"""

from fasterpose.study.check import compare_results, identical_runs
from fasterpose.study.claims import evaluate_claim
from fasterpose.study.collect import collect_results
from fasterpose.study.dataset import DatasetInfo, ensure_dataset
from fasterpose.study.driver import Options, execute
from fasterpose.study.manifest import Arm, Claim, DatasetSpec, Group, Pretrain, Regime, Study, StudyError, load_study
from fasterpose.study.oracle import oracle_ap
from fasterpose.study.report import readme_summary, update_readme, write_report
from fasterpose.study.results import (
    ArmResult,
    ArmSummary,
    ClaimResult,
    Invocation,
    RegimeResult,
    RunResult,
    Stat,
    StudyResults,
    summarize,
)
from fasterpose.study.runs import (
    PlannedRun,
    backbone_file,
    export_backbone,
    plan_runs,
    pretrain_config,
    run_config,
    run_finished,
    run_study,
    save_backbone,
)

__all__ = [
    "Arm",
    "ArmResult",
    "ArmSummary",
    "Claim",
    "ClaimResult",
    "DatasetInfo",
    "DatasetSpec",
    "Group",
    "Invocation",
    "Options",
    "PlannedRun",
    "Pretrain",
    "Regime",
    "RegimeResult",
    "RunResult",
    "Stat",
    "Study",
    "StudyError",
    "StudyResults",
    "backbone_file",
    "collect_results",
    "compare_results",
    "ensure_dataset",
    "evaluate_claim",
    "execute",
    "export_backbone",
    "identical_runs",
    "load_study",
    "oracle_ap",
    "plan_runs",
    "pretrain_config",
    "readme_summary",
    "run_config",
    "run_finished",
    "run_study",
    "save_backbone",
    "summarize",
    "update_readme",
    "write_report",
]
