"""Batch scoring: the engine (discover, shard, resume, worker pool), the tables it writes
(``clips.csv``, frames, ``failures.csv``) and the HTML report."""
