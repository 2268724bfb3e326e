"""Per-post explanations: which words pushed the model towards its label, and how text and image each lean.

`Explainer` wraps a loaded `SentimentModel`; the HTTP API calls it (through `monitor api`'s wiring, since the
monitor's services never import workers) for one stored post at a time.
"""

from workers.explain.attributions import Explainer, Explanation, ModalityBalance, WordAttribution

__all__ = ["Explainer", "Explanation", "ModalityBalance", "WordAttribution"]
