"""Bootstrapped ensembles of BETE-NET models (Sec. II.2, Methods IV.2).

Recipe (as the paper)
---------------------
* Member ``k`` of an ensemble of ``N`` is trained on a **bootstrap resample** of the training split:
  ``n`` draws *with replacement* from the ``n`` training materials (equal size).  About
  ``1 - (1 - 1/n)^n -> 1 - 1/e = 63.2 %`` of the materials are drawn at least once; the remaining
  **out-of-bag** (OOB) materials, ``(1 - 1/n)^n -> 36.8 %`` (the paper's "38 %"), validate member ``k``.
  The actual OOB fraction of each member is recorded in its ``member.json``.
* The resample is a pure function of ``(EnsembleConfig.seed, k, sorted training ids)``
  (:func:`bootstrap_sample`), so it does not depend on the order of the records, on which worker
  trains the member, or on ``N`` (growing an ensemble from 8 to 20 members keeps the first 8).
* Each member is trained by :func:`betenet.train.train_model` with the double-descent policy, to the
  **modern regime** (second descent).  When no modern regime is detected within the epoch budget the
  member falls back to its **best-validation** checkpoint; which one was used, and why, is recorded
  per member (``checkpoint.used``) and summarised by :func:`oob_summary`.
* Ensemble prediction = **mean** of the members' 51-bin α²F; spread = **standard deviation** over
  members, per bin and per derived property.

Which numbers the tables use
----------------------------
:func:`summarise` returns both

* ``moments_of_mean`` / ``tc_of_mean_K``: λ, ω_log, ω₂ and Allen-Dynes T_c of the **ensemble-mean
  α²F** — the paper's "final prediction is the mean of the predicted α²F" (Methods IV.2).  **Table 1
  rows and parity-plot points use these.**
* ``moments_mean``/``moments_std`` and ``tc_mean_K``/``tc_std_K``: the property computed for every
  member, then averaged / spread over members.  **Error bars (parity plots) and the screening
  lower confidence bound use the per-member std.**  (λ is linear in α²F, so ``moments_mean.lambda_``
  equals ``moments_of_mean.lambda_``; ω_log, ω₂ and T_c are not linear and differ slightly.)

Standard deviations are population std over members (``ddof=0``) unless asked otherwise.

On disk (``artifacts/<profile>/ensembles/<variant>/``)
-----------------------------------------------------
::

    ensemble.json          recipe: schema, variant, profile, model/train/ensemble config, train-id hash,
                           data hash, recipe fingerprint, betenet version
    member-000/
        bootstrap.json     written first: seed, sample ids (with repeats, draw order), OOB ids, fingerprint
        attempts.jsonl     one line per (re)start: time, host, pid
        train/             the trainer's directory (history, last.pt for resume, regime checkpoints)
        model.pt           the chosen checkpoint (self-describing: weights + config + version + member meta)
        oob.npz            OOB ids, predicted and target 51-bin α²F of the chosen checkpoint
        member.json        written LAST, atomically: the member is finished iff this file is valid, says
                           "complete", matches the recipe fingerprint and model.pt has the recorded SHA-256
    stale/<fp>/member-XXX  members of an older recipe (other training data/config), moved here, never deleted

``member.json`` schema (``betenet.ensemble.member``, version 1)::

    schema, schema_version, status="complete", variant, profile, member, fingerprint, betenet_version,
    seed (int: member seed), bootstrap {n_train, n_sample, n_unique, n_oob, oob_fraction, unique_fraction,
    redraws, sample_ids, oob_ids}, regimes {classical_epoch, critical_epoch, modern_epoch, modern_detected,
    epochs_trained, stopped_reason, ...}, checkpoint {used: "modern" | "best_val", epoch, reason, path,
    sha256}, oob {n, mse, mae_lambda, mae_omega_log_K, mae_omega_2_K}, timings {wall_s, train_s, oob_s,
    started, finished, attempts, host, pid, torch_threads}

Predictions (``artifacts/<profile>/predictions/<variant>.npz``, schema ``betenet.ensemble.predictions``)::

    schema, schema_version, variant, profile, split ("test"), mu_star: 0-d arrays
    ids (n,) str; omega_meV (51,); member_index (n_members,) int
    pred_a2f (n_members, n, 51)   every member's 51-bin α²F
    target_a2f (n, 51)            smoothed/binned DFT α²F (the networks' target)
    true_lambda, true_omega_log_K, true_omega_2_K, true_tc_K (n,)   raw-DFT reference (betenet.metrics)

Parallelism and resume
----------------------
Members run as Dask tasks (:func:`betenet.cluster.dask_client` with ``profile.dask``: a LocalCluster of
1-thread worker processes by default, a scheduler address or a jobqueue cluster from config),
collected with ``as_completed`` under a tqdm bar.  :func:`run_ensembles` puts the members of all
variants on one cluster (worker start-up, i.e. importing torch/e3nn, is paid once); no cluster is
started when every member is already finished.  A finished member is detected from its files and
never resubmitted; an interrupted one resumes inside the trainer from its ``train/last.pt``.

Typical use (notebook 05)::

    runs = run_ensembles(records, profile, train_ids)                 # {variant: EnsembleRun}
    sets = predict_runs(runs, records, test_ids, profile=profile)     # saved predictions/<variant>.npz
    rows = table1_ensemble_rows(sets.values(), n_train=len(train_ids))

Layout of this package
----------------------
:mod:`~betenet.ensemble.store` (files, fingerprints, member states, loading), :mod:`~betenet.ensemble.run`
(training members, Dask), :mod:`~betenet.ensemble.predict` (prediction, saved predictions),
:mod:`~betenet.ensemble.report` (Table 1 rows, spread calibration, findings); this module re-exports their public
names and those of :mod:`betenet.bootstrap` (the resamples: a module of their own, outside this package, because
the paper's split reader :mod:`betenet.upstream_split` uses them too).
"""

from __future__ import annotations

from ..bootstrap import expected_oob_fraction, member_seed, Bootstrap, bootstrap_sample, bootstrap_samples
from .store import (
    ENSEMBLE_SCHEMA, MEMBER_SCHEMA, PREDICTIONS_SCHEMA, SCHEMA_VERSION, VARIANTS, EnsembleError, StaleMemberError,
    ensemble_directory, member_directory, recipe_fingerprint, member_train_config, MemberState, member_status,
    member_lock_path, EnsembleMember, load_ensemble, EnsembleRun, oob_summary,
)
from .run import MemberSpec, train_member, run_ensembles, run_ensemble, ensemble_status
from .predict import (
    predict_ensemble, EnsemblePrediction, summarise, predict_split, predict_runs, oob_ensemble_properties,
    PredictionSet, predictions_path, save_predictions, load_predictions,
)
from .report import table1_ensemble_rows, spread_calibration, findings_markdown

__all__ = [
    "ENSEMBLE_SCHEMA",
    "MEMBER_SCHEMA",
    "PREDICTIONS_SCHEMA",
    "SCHEMA_VERSION",
    "VARIANTS",
    "MemberState",
    "member_lock_path",
    "EnsembleError",
    "StaleMemberError",
    "Bootstrap",
    "expected_oob_fraction",
    "member_seed",
    "bootstrap_sample",
    "bootstrap_samples",
    "ensemble_directory",
    "member_directory",
    "recipe_fingerprint",
    "member_train_config",
    "member_status",
    "MemberSpec",
    "train_member",
    "EnsembleRun",
    "run_ensemble",
    "run_ensembles",
    "ensemble_status",
    "EnsembleMember",
    "load_ensemble",
    "predict_ensemble",
    "EnsemblePrediction",
    "summarise",
    "PredictionSet",
    "predictions_path",
    "predict_split",
    "save_predictions",
    "load_predictions",
    "table1_ensemble_rows",
    "predict_runs",
    "spread_calibration",
    "findings_markdown",
    "oob_summary",
    "oob_ensemble_properties",
]
