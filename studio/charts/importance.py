"""Global importances derived from other results, so the Global page can put them side by side.

- :func:`mean_abs_attribution`: mean |attribution| per feature over the
  explained rows (mean |SHAP| from a ``shap`` run on a sample of rows);
- :func:`ebm_term_importance`: mean |term contribution| per EBM term over
  data rows, from an ``ebm`` / ``ebm_surrogate`` result (interpret's
  ``term_importances()`` on the rows the EBM was fitted to).

Both return an :class:`Explanation` of kind ``"importance"`` that
:func:`studio.charts.importance_bars` draws beside permutation importance.
Nothing here runs an explainer or the model.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from studio.explanation import Explanation, Importance


def _derived(exp: Explanation, method: str, names, mean, std, **checks) -> Explanation:
    return dataclasses.replace(
        exp, method=method, kind="importance", values=None, base_values=None, data=None, curves=[], rules=[],
        importances=[Importance(str(n), float(m), float(s)) for n, m, s in zip(names, mean, std)],
        checks={**{k: float(v) for k, v in checks.items()}},
    )


def mean_abs_attribution(exp: Explanation, label: str | None = None) -> Explanation:
    """Mean and std over rows of |attribution| per feature (tabular attributions).

    Parameters
    ----------
    exp : Explanation
        Tabular attribution with ``values`` of shape (n_rows, n_features).
    label : str, optional
        Method name shown (default ``"mean |<method>|"``).
    """
    values = np.abs(np.asarray(exp.values, dtype=np.float64))  # (n_rows, n_features)
    if values.ndim != 2:
        raise ValueError(f"{exp.method}: mean |attribution| needs tabular attributions, got shape {values.shape}")
    return _derived(exp, label or f"mean |{exp.method}|", exp.feature_names, values.mean(axis=0), values.std(axis=0),
                    rows=len(values))


def term_contributions(exp: Explanation, x) -> tuple[list[str], np.ndarray]:
    """Each EBM term's contribution to the score of each row.

    Parameters
    ----------
    exp : Explanation
        From ``ebm`` or ``ebm_surrogate`` (curves of kind ``"ebm"``).
    x : ndarray of shape (n, n_features)
        Rows in the explanation's feature order.

    Returns
    -------
    terms : list of str
        interpret's term names (``"a & b"`` for a pair).
    contributions : ndarray of shape (n, n_terms)
        Intercept + the sum over terms of a row is the EBM's score.
    """
    from studio.explainers.ebm import ebm_score

    curves = [c for c in exp.curves if c.kind == "ebm"]
    if not curves:
        raise ValueError(f"{exp.method} has no EBM terms")
    terms, columns = [], []
    for c in curves:
        one = dataclasses.replace(exp, curves=[c])
        columns.append(ebm_score(one, x) - float(c.extra["intercept"]))  # (n,)
        terms.append(" x ".join(map(str, c.features)))  # interaction terms named `a x b` (interpret: `a & b`)
    return terms, np.stack(columns, axis=1)


def ebm_term_importance(exp: Explanation, x, max_rows: int = 5000, seed: int = 0) -> Explanation:
    """Mean |term contribution| per EBM term over the rows of ``x`` (sampled to ``max_rows``).

    On the rows the EBM was fitted to this is interpret's
    ``ExplainableBoostingClassifier.term_importances()`` (its default
    ``"avg_weight"``), on the explained class's score.
    """
    x = np.asarray(x)
    if len(x) > max_rows:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))]
    terms, contrib = term_contributions(exp, x)
    mag = np.abs(contrib)  # (n, n_terms)
    return _derived(exp, f"{exp.method} term importance", terms, mag.mean(axis=0), mag.std(axis=0), rows=len(x))
