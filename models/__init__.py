"""Pure story-detection computation: schema, embedders, features, clustering, labels, metrics.

Nothing in this package opens a socket or imports a streaming library; the same code runs inside
the Faust agents (``stream/``) and in the in-process evaluator.
"""

# Bumped when decisions change: 2 added the nearest-neighbour votes, 3 story merges, 4 the merge check,
# 5 fewer candidates per article (12 from the index + 2 recent; same join models).
MODEL_VERSION = "storywire-5"
