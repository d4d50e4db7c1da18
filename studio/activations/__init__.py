"""Activation explorer (after ActiVis, Kahng et al. 2017): a model's graph, one layer's activations, projections.

>>> import studio
>>> g = studio.graph(model)                      # nodes with shape, params, MACs; edges
>>> act = studio.activations(model, data, "layer4.1.conv2", rows=range(200))
>>> act.group_means(act.groups_by("correct"))    # names, (groups x neurons) means, counts
>>> act.project("pca").xy                        # (rows x 2)

Results are written as schema ``studio.activations/1`` (docs/activations.md).
"""

import sys
import types

from studio.activations.capture import (MAX_PROJECTED, PROJECTIONS, REDUCTIONS, Activations, Projection, activations,
                                        dead_neurons, project_matrix)
from studio.activations.graph import SCHEMA, Graph, GraphNode, graph

__all__ = ["graph", "activations", "dead_neurons", "Graph", "GraphNode", "Activations", "Projection", "project_matrix", "SCHEMA",
           "REDUCTIONS", "PROJECTIONS", "MAX_PROJECTED"]


class _CallableModule(types.ModuleType):
    """This package, callable as its verb: ``studio.activations(model, data, layer)`` (issue 15's public surface)."""

    def __call__(self, model, data, layer, rows=None, groups=None, reduce="mean", batch_size=None, cache=True):
        return activations(model, data, layer, rows=rows, groups=groups, reduce=reduce, batch_size=batch_size,
                           cache=cache)


sys.modules[__name__].__class__ = _CallableModule
