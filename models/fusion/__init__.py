"""The A/H + emotion fusion: encoders, interpretable cues and their lexicon, the zero-shot
prior, the fusion graph, installed fusions and explanations."""
