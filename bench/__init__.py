"""pydb's benchmarks: each module measures pydb side by side with its anchors (see bench/common.py)."""
