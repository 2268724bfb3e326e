"""`monitor eval`: the model beside lexicon baselines on named evaluation sets, fetched and cached on first use."""
