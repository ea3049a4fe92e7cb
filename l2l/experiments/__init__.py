"""Experiments: the run store and one module per notebook group, each returning tidy tables.

=================  =========================================================================
``store``          the run store: trained / unlearned models and completions, cached once
``harness``        notebooks 00 (quickstart) and 01 (every family before unlearning)
``audit``          notebook 03 (gap to retrain, MIA, OOD, backdoor, T-SNE, extractor check)
``p1_tables``      Li et al. Tables 1-3 (notebooks 10 and 15)
``p1_figures``     Li et al. Figures 1-4 (notebooks 11-14)
``claims``         the papers' claims checked against the saved tables (claims.csv)
``p2_figures``     Varshney & Torra: motivation grid, pipeline curves (notebooks 20-21)
``p2_tables``      Varshney & Torra: Li et al.'s tables with their rows, two rankings (22)
``p2_autoencoder`` the AutoEncoder study against retraining, 3 training seeds (23)
``p2_audit``       the poisoning audit at sample level, every method (24)
``p2_ablation``    the empirical (epsilon, delta) reading and the lambda / budget ablation (25-26)
``p2_claims``      Varshney & Torra's claims (27; rows of claims.csv)
=================  =========================================================================

Every trained artefact goes through the config-keyed cache (``l2l.io.load_or_compute``), so a
rerun only recomputes what its config changed.
"""

from l2l.data import load_data
from l2l.experiments.audit import (AUDIT_FAMILIES, AUDIT_METHODS, EXTRACTOR_CHECK_IMAGES,
                                   REGENERATION_STEPS, TSNE_POINTS, audit_models, audit_runs,
                                   backdoor_panel, backdoor_rows, extractor_check, privacy_rows,
                                   run_audit, tsne_points)
from l2l.experiments.harness import GENERATOR_MASKS, run_generators, run_quickstart
from l2l.experiments.store import (Run, completions, data, domain_classifier, feature_extractor,
                                   frozen_tokenizer, retain_set, run_config, test_images,
                                   trained_generator, trained_key, unlearned, unlearned_key,
                                   unlearned_model, varshney_calibrated)

__all__ = [
    "AUDIT_FAMILIES", "AUDIT_METHODS", "EXTRACTOR_CHECK_IMAGES", "GENERATOR_MASKS",
    "REGENERATION_STEPS", "TSNE_POINTS", "Run", "audit_models", "audit_runs", "backdoor_panel",
    "backdoor_rows", "completions", "data", "domain_classifier", "extractor_check",
    "feature_extractor", "frozen_tokenizer", "load_data", "privacy_rows", "retain_set", "run_audit", "run_config",
    "run_generators", "run_quickstart", "test_images", "trained_generator", "trained_key",
    "tsne_points", "unlearned", "unlearned_key", "unlearned_model", "varshney_calibrated",
]
