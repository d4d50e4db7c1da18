"""Explainers that misbehave on purpose, registered by the fault tests only."""

from __future__ import annotations

import time

from studio.explainers.base import Explainer
from studio.explanation import Explanation, Importance


class OutOfMemory(Explainer):
    name = "fake_oom"
    scope = "global"
    kind = "importance"

    def explain(self, model, data, params, ctx):
        raise MemoryError()


class Raises(Explainer):
    name = "fake_raises"
    scope = "global"
    kind = "importance"

    def explain(self, model, data, params, ctx):
        raise RuntimeError("a bug inside the explainer")


class Slow(Explainer):
    """Polls ``ctx.progress`` between small sleeps; records how far it got."""

    name = "fake_slow"
    scope = "global"
    kind = "importance"
    steps_done = 0
    max_steps = 4000

    def explain(self, model, data, params, ctx):
        for i in range(self.max_steps):
            type(self).steps_done = i
            ctx.progress(i / self.max_steps, "working")
            time.sleep(0.001)
        return Explanation(method=self.name, kind="importance", feature_names=list(data.feature_names),
                           importances=[Importance(feature=f, mean=0.0, std=0.0) for f in data.feature_names])
