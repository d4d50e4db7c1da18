"""Quality of explanations under perturbation, after XAIport (Wang and Liu, 2024).

>>> report = studio.assess(model, data, ["shap", "lime"], ["noise", "blur"], rows=range(10))
>>> report.to_json()          # schema studio.assessment/1
>>> report.to_csv()           # the long table, one number per line

``studio.quality`` builds only on the Model's public verbs (``output``,
``predict``) and on ``studio.explain``, so a sandboxed model is assessed
exactly like an in-process one.
"""

from studio.quality.assess import ATTACKS, SCHEMA, Assessment, Scenario, assess, perturb, reassess
from studio.quality.metrics import rank_correlation, top_k_overlap

__all__ = ["assess", "reassess", "Assessment", "Scenario", "perturb", "rank_correlation", "top_k_overlap", "ATTACKS", "SCHEMA"]
